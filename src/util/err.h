/*
 * err.h - environment errors: a code the caller maps to a reply, the errno, a loggable line.
 *
 * Fallible functions return 0 or -1 and fill an optional struct hk_err (NULL = not wanted).
 * Thread: any.
 */
#ifndef HK_ERR_H
#define HK_ERR_H

#include "common.h"

enum hk_err_code {
	HK_E_OK = 0,
	HK_E_IO,      /* I/O error: SMTP 451 4.3.0, HTTP 503 */
	HK_E_NOSPACE, /* disk full or quota: SMTP 452 4.3.1 */
	HK_E_BUSY,    /* too much in flight: SMTP 451 4.3.0 */
	HK_E_CONFIG,  /* bad configuration */
	HK_E_DATA,    /* bad data read from disk or a peer */
	HK_E_NOTFOUND,
	HK_E_EXISTS,
	HK_E_TEMP,    /* anything else temporary */
};

#define HK_ERR_TEXT_MAX 256

struct hk_err {
	enum hk_err_code code;
	int sys_errno;
	char text[HK_ERR_TEXT_MAX];
};

/* Fill err (if non-NULL) with code and a formatted text; returns -1. */
HK_PRINTF(3, 4) int hk_err_set(struct hk_err *err, enum hk_err_code code, const char *fmt, ...);
/*
 * Fill err from an errno value: ENOSPC and EDQUOT map to HK_E_NOSPACE, the rest to HK_E_IO.
 * The text is "<fmt>: <strerror>". Returns -1.
 */
HK_PRINTF(3, 4) int hk_err_sys(struct hk_err *err, int sys_errno, const char *fmt, ...);
/* Short name of a code ("io", "nospace", ...). */
const char *hk_err_code_name(enum hk_err_code code);

#endif
