/* err.c - environment error records. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "poison.h"

int
hk_err_set(struct hk_err *err, enum hk_err_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	err->sys_errno = 0;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

int
hk_err_sys(struct hk_err *err, int sys_errno, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err == NULL)
		return -1;
	err->code = (sys_errno == ENOSPC || sys_errno == EDQUOT) ? HK_E_NOSPACE : HK_E_IO;
	err->sys_errno = sys_errno;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	n = strlen(err->text);
	snprintf(err->text + n, sizeof(err->text) - n, ": %s", strerror(sys_errno));
	return -1;
}

const char *
hk_err_code_name(enum hk_err_code code)
{
	static const char *const names[] = {
		[HK_E_OK] = "ok", [HK_E_IO] = "io", [HK_E_NOSPACE] = "nospace",
		[HK_E_BUSY] = "busy", [HK_E_CONFIG] = "config", [HK_E_DATA] = "data",
		[HK_E_NOTFOUND] = "notfound", [HK_E_EXISTS] = "exists", [HK_E_TEMP] = "temp",
	};

	return (unsigned)code < HK_ARRAY_LEN(names) ? names[code] : "unknown";
}
