/*
 * conf_schema.c - the configuration schema: one table row per key (name, type setter, field
 * offset, default, limits, validator), the walk that applies it to the YAML tree, and the checks
 * that span several keys (references, duplicate names, TLS material).
 *
 * Defaults are YAML text parsed by the same setters as the file, so a default can never be a
 * value the file itself could not hold. Every problem is recorded with its position and the walk
 * goes on, so one run reports all of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/crc32c.h"
#include "../util/fsops.h"
#include "../util/log.h"
#include "../util/num.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "conf.h"
#include "conf_int.h"
#include "../util/poison.h"

struct conf_key;

typedef void (*conf_set_fn)(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst);
typedef void (*conf_finish_fn)(struct conf_ctx *ctx, void *obj, const struct ynode *map);
typedef bool (*conf_check_fn)(const char *s);

struct conf_enum {
	const char *name;
	int value;
};

struct conf_table {
	const struct conf_key *keys;
	size_t n_keys;
	size_t size;           /* element size, for lists of mappings */
	conf_finish_fn finish; /* after the keys of one mapping: defaults that depend on others */
};

struct conf_key {
	const char *name;
	conf_set_fn set;
	size_t off;       /* the field, from the start of the object the table describes */
	size_t off2;      /* a second field: count of a list, period of a rate */
	const char *dflt; /* YAML text of the default; NULL: zero, or set by a finish hook */
	bool required;
	bool readable;    /* a file that must be readable when files are checked */
	bool lower;       /* store lower-cased (domains) */
	uint64_t min, max;
	const struct conf_enum *enums;
	const struct conf_table *sub;
	conf_check_fn check;
	const char *check_what; /* "a host name or IP address" */
};

_Static_assert(sizeof(enum conf_tls) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_auth) == sizeof(int), "enums are stored as int");

/* ---- small helpers ---- */

static void *
conf_field(void *obj, size_t off)
{
	return (char *)obj + off;
}

static void
conf_path_key(struct conf_ctx *ctx, const char *key)
{
	if (ctx->path.len > 0)
		buf_putc(&ctx->path, '.');
	buf_append_str(&ctx->path, key);
}

static const char *
conf_where(const struct conf_ctx *ctx)
{
	return ctx->path.len > 0 ? ctx->path.ptr : "the top level";
}

/* Edit distance of a and b, ASCII case-insensitive; large for long words. */
static size_t
conf_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			char ca = a[i - 1], cb = b[j - 1];
			size_t cost;

			if (ca >= 'A' && ca <= 'Z')
				ca = (char)(ca - 'A' + 'a');
			if (cb >= 'A' && cb <= 'Z')
				cb = (char)(cb - 'A' + 'a');
			cost = diag + (ca != cb);
			if (row[j] + 1 < cost)
				cost = row[j] + 1;
			if (row[j - 1] + 1 < cost)
				cost = row[j - 1] + 1;
			row[j] = cost;
			diag = up;
		}
	}
	return row[lb];
}

/* The closest of names[0..n) to word when it is a plausible typo, else NULL. */
static const char *
conf_closest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, i;

	for (i = 0; i < n; i++) {
		size_t d;

		if (names[i] == NULL)
			continue;
		d = conf_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	if (best == NULL || best_d > 2 || best_d >= strlen(word))
		return NULL;
	return best;
}

static bool
conf_has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/*
 * The text of scalar v, or NULL after a diagnostic (wrong kind, empty, control characters).
 * what names the expected value for the wrong-kind message ("a string", "a duration").
 */
static const char *
conf_scalar(struct conf_ctx *ctx, const struct ynode *v, const char *what)
{
	if (v->kind == YNODE_BAD)
		return NULL;
	if (v->kind != YNODE_SCALAR) {
		conf_load_value_error(ctx, v, "expected %s, got %s", what, conf_load_kind_name(v));
		return NULL;
	}
	if (conf_load_is_null(v) || v->len == 0) {
		conf_load_value_error(ctx, v, "needs a value (%s)", what);
		return NULL;
	}
	if (conf_has_control(v->str)) {
		conf_load_value_error(ctx, v, "contains a control character");
		return NULL;
	}
	return v->str;
}

/* True when v is a sequence; null counts as an empty one. Diagnoses anything else. */
static bool
conf_is_list(struct conf_ctx *ctx, const struct ynode *v, const char *example)
{
	if (v->kind == YNODE_SEQ)
		return true;
	if (v->kind == YNODE_BAD || conf_load_is_null(v))
		return false;
	conf_load_value_error(ctx, v, "expected a list (%s), got %s", example,
	    conf_load_kind_name(v));
	return false;
}

static void
conf_replace_str(void *dst, const char *s)
{
	char **p = dst;

	free(*p);
	*p = xstrdup(s);
}

/* ---- validators ---- */

static bool
conf_is_label(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");

	return n > 0 && n <= 64 && s[n] == '\0';
}

static bool
conf_is_printable(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
			return false;
	}
	return n > 0 && n <= 255;
}

static bool
conf_is_host(const char *s)
{
	return conf_net_is_hostname(s) || conf_net_is_ip(s);
}

/* RFC 5321 4.1.3: a domain or an address literal [1.2.3.4] / [IPv6:...]. */
static bool
conf_is_helo(const char *s)
{
	size_t n = strlen(s);
	char ip[64];

	if (s[0] != '[')
		return conf_net_is_hostname(s);
	if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof(ip))
		return false;
	memcpy(ip, s + 1, n - 2);
	ip[n - 2] = '\0';
	if (strncmp(ip, "IPv6:", 5) == 0)
		return strchr(ip + 5, ':') != NULL && conf_net_is_ip(ip + 5);
	return strchr(ip, ':') == NULL && conf_net_is_ip(ip);
}

/* A resolver to forward to: a numeric IP, optionally "@port" (libunbound's syntax). */
static bool
conf_is_dns_forward(const char *s)
{
	const char *at = strchr(s, '@');
	char ip[64];
	uint64_t port;
	size_t n = at != NULL ? (size_t)(at - s) : strlen(s);

	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (!conf_net_is_ip(ip))
		return false;
	return at == NULL || (num_parse_u64z(at + 1, 65535, &port) == 0 && port > 0);
}

/*
 * crypt(3) strings of the schemes libxcrypt verifies well: yescrypt ($y$), gost-yescrypt ($gy$),
 * scrypt ($7$), bcrypt ($2a$ $2b$ $2y$), SHA-crypt ($5$ $6$). Shape only: "$id$...$hash".
 */
static bool
conf_is_crypt(const char *s)
{
	static const char *const ids[] = { "$y$", "$gy$", "$7$", "$2a$", "$2b$", "$2y$", "$5$",
		"$6$" };
	const char *last;
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(ids); i++) {
		if (strncmp(s, ids[i], strlen(ids[i])) == 0)
			break;
	}
	if (i == HK_ARRAY_LEN(ids))
		return false;
	if (s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./$=,")] !=
	    '\0')
		return false;
	last = strrchr(s, '$');
	/* At least "$id$salt$hash" (bcrypt: "$2b$cost$salthash"), with a non-empty hash. */
	return last - s > (ptrdiff_t)strlen(ids[i]) - 1 && last[1] != '\0' && strlen(last + 1) >= 8;
}

/* ---- setters, one per value type ---- */

static void
conf_set_str(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const char *s = conf_scalar(ctx, v, "a string");

	if (s == NULL)
		return;
	if (k->check != NULL && !k->check(s)) {
		conf_load_value_error(ctx, v, "%s is not %s", log_q(s), k->check_what);
		return;
	}
	conf_replace_str(dst, s);
}

static void
conf_set_secret_hash(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst)
{
	const char *s = conf_scalar(ctx, v, "a crypt(3) hash");

	if (s == NULL)
		return;
	/* The value is never echoed: a hash is still a secret worth keeping out of logs. */
	if (!conf_is_crypt(s)) {
		conf_load_value_error(ctx, v,
		    "not a crypt(3) hash (expected \"$y$...\", \"$6$...\" or \"$2b$...\"; "
		    "make one with: mkpasswd -m yescrypt)");
		return;
	}
	conf_replace_str(dst, s);
}

static void
conf_set_path(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const char *s = conf_scalar(ctx, v, "a file name");
	struct stat st;
	int fd;

	if (s == NULL)
		return;
	if (k->readable && ctx->check_files) {
		fd = fsops_openat(AT_FDCWD, s, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
		if (fd == -1) {
			conf_load_value_error(ctx, v, "cannot read %s: %s", log_q(s),
			    strerror(errno));
			return;
		}
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
			conf_load_value_error(ctx, v, "%s is not a regular file", log_q(s));
			fsops_close(fd);
			return;
		}
		fsops_close(fd);
	}
	conf_replace_str(dst, s);
}

static void
conf_set_bool(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const char *s = conf_scalar(ctx, v, "true or false");

	if (s == NULL)
		return;
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		*(bool *)dst = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		*(bool *)dst = false;
	else
		conf_load_value_error(ctx, v, "%s is not true or false", log_q(s));
}

static int
conf_number(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, uint64_t *out)
{
	const char *s = conf_scalar(ctx, v, "a number");

	if (s == NULL)
		return -1;
	if (num_parse_u64z(s, UINT64_MAX, out) == -1) {
		conf_load_value_error(ctx, v, "%s is not a whole number", log_q(s));
		return -1;
	}
	if (*out < k->min || *out > k->max) {
		conf_load_value_error(ctx, v, "%s is out of range (%llu to %llu)", s,
		    (unsigned long long)k->min, (unsigned long long)k->max);
		return -1;
	}
	return 0;
}

static void
conf_set_uint(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	uint64_t n;

	HK_ASSERT(k->max <= UINT32_MAX);
	if (conf_number(ctx, k, v, &n) == 0)
		*(unsigned *)dst = (unsigned)n;
}

static void
conf_set_u64(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	uint64_t n;

	if (conf_number(ctx, k, v, &n) == 0)
		*(uint64_t *)dst = n;
}

/* ms in the largest unit that divides it: 86400000 -> "1d". */
static void
conf_fmt_duration(uint64_t ms, char *out, size_t size)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = { { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };
	size_t i;

	for (i = 0; i < HK_ARRAY_LEN(units); i++) {
		if (ms >= units[i].ms && ms % units[i].ms == 0) {
			snprintf(out, size, "%llu%s", (unsigned long long)(ms / units[i].ms),
			    units[i].unit);
			return;
		}
	}
	snprintf(out, size, "%llums", (unsigned long long)ms);
}

/* One duration into *out; -1 after a diagnostic. */
static int
conf_duration(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    uint64_t *out)
{
	const char *s = conf_scalar(ctx, v, "a duration");

	if (s == NULL)
		return -1;
	if (num_parse_duration_ms(s, out) == -1) {
		conf_load_value_error(ctx, v, "%s is not a duration (use 30s, 5m, 2h, 5d)",
		    log_q(s));
		return -1;
	}
	if (*out < k->min || *out > k->max) {
		char lo[32], hi[32];

		conf_fmt_duration(k->min, lo, sizeof(lo));
		conf_fmt_duration(k->max, hi, sizeof(hi));
		conf_load_value_error(ctx, v, "%s is out of range (%s to %s)", log_q(s), lo, hi);
		return -1;
	}
	return 0;
}

static void
conf_set_duration(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst)
{
	uint64_t ms;

	if (conf_duration(ctx, k, v, &ms) == 0)
		*(uint64_t *)dst = ms;
}

static void
conf_set_size(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const char *s = conf_scalar(ctx, v, "a size");
	uint64_t n;

	if (s == NULL)
		return;
	if (num_parse_size(s, &n) == -1) {
		conf_load_value_error(ctx, v, "%s is not a size (use 512K, 25M, 1G)", log_q(s));
		return;
	}
	if (n < k->min) {
		HK_ASSERT(k->min == 1);
		conf_load_value_error(ctx, v, "must be more than 0 (use 512K, 25M, 1G)");
		return;
	}
	*(uint64_t *)dst = n;
}

static void
conf_set_rate(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const char *s = conf_scalar(ctx, v, "a rate");
	uint64_t count, period;

	if (s == NULL)
		return;
	if (num_parse_rate(s, &count, &period) == -1) {
		conf_load_value_error(ctx, v, "%s is not a rate (use 10/s, 600/m, 100/h)",
		    log_q(s));
		return;
	}
	*(uint64_t *)dst = count;
	*(uint64_t *)((char *)dst - k->off + k->off2) = period;
}

static const struct conf_enum *
conf_enum_find(const struct conf_enum *e, const char *s)
{
	for (; e->name != NULL; e++) {
		if (strcmp(e->name, s) == 0)
			return e;
	}
	return NULL;
}

static void
conf_enum_error(struct conf_ctx *ctx, const struct conf_enum *enums, const struct ynode *v)
{
	struct buf b = BUF_INIT;
	const struct conf_enum *e;

	for (e = enums; e->name != NULL; e++)
		buf_printf(&b, "%s%s", e == enums ? "" : ", ", e->name);
	conf_load_value_error(ctx, v, "%s is not one of: %s", log_q(v->str), b.ptr);
	buf_fini(&b);
}

static void
conf_set_enum(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const char *s = conf_scalar(ctx, v, "a word");
	const struct conf_enum *e;

	if (s == NULL)
		return;
	e = conf_enum_find(k->enums, s);
	if (e == NULL) {
		conf_enum_error(ctx, k->enums, v);
		return;
	}
	*(int *)dst = e->value;
}

static void
conf_set_log_level(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst)
{
	const char *s = conf_scalar(ctx, v, "a log level");

	if (s == NULL)
		return;
	if (conf_enum_find(k->enums, s) == NULL) {
		conf_enum_error(ctx, k->enums, v);
		return;
	}
	conf_replace_str(dst, s);
}

/* A scalar or a list of enum words, or'ed together: relay, log.trace. */
static void
conf_set_flags(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const struct ynode *one = v;
	unsigned bits = 0;
	size_t i, n = 1;

	if (v->kind == YNODE_SEQ) {
		n = v->n;
		if (n == 0 && k->min > 0) {
			conf_load_value_error(ctx, v, "needs at least one value");
			return;
		}
	}
	for (i = 0; i < n; i++) {
		const struct conf_enum *e;
		const char *s;

		if (v->kind == YNODE_SEQ)
			one = v->items[i];
		s = conf_scalar(ctx, one, "a word or a list of words");
		if (s == NULL)
			return;
		e = conf_enum_find(k->enums, s);
		if (e == NULL) {
			conf_enum_error(ctx, k->enums, one);
			return;
		}
		if (bits & (unsigned)e->value) {
			conf_load_value_error(ctx, one, "%s is listed twice", log_q(s));
			return;
		}
		bits |= (unsigned)e->value;
	}
	*(unsigned *)dst = bits;
}

static void
conf_set_addr(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	const char *s = conf_scalar(ctx, v, "an address");
	struct conf_addr *a = dst, parsed;
	const char *why = NULL;

	if (s == NULL)
		return;
	if (conf_addr_parse(s, &parsed, &why) == -1) {
		conf_load_value_error(ctx, v,
		    "%s is not a listening address: %s (use 127.0.0.1:25, [::1]:25 or /path.sock)",
		    log_q(s), why);
		return;
	}
	free(a->text);
	*a = parsed;
}

/* A Unix socket path ("/..." or "./..."), short enough for a socket address. */
static void
conf_set_socket_path(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst)
{
	const char *s = conf_scalar(ctx, v, "a socket path");
	struct conf_addr parsed;
	const char *why = NULL;

	(void)k;
	if (s == NULL)
		return;
	if ((s[0] != '/' && s[0] != '.') || conf_addr_parse(s, &parsed, &why) == -1) {
		conf_load_value_error(ctx, v, "%s is not a Unix socket path: %s (use "
		    "/run/hikyaku/sendmail.sock)", log_q(s), why != NULL ? why :
		    "it must start with / or .");
		return;
	}
	free(parsed.text);
	conf_replace_str(dst, s);
}

/* sendmail.sock in the directory of the control socket; NULL when the path would be too long. */
static char *
conf_sendmail_socket_default(const char *control_socket)
{
	const char *slash = strrchr(control_socket, '/');
	struct conf_addr parsed;
	const char *why = NULL;
	char *path;

	if (slash == NULL)
		path = xstrdup("./sendmail.sock");
	else
		path = xasprintf("%.*ssendmail.sock", (int)(slash - control_socket + 1),
		    control_socket);
	if (conf_addr_parse(path, &parsed, &why) == -1) {
		free(path);
		return NULL;
	}
	free(parsed.text);
	return path;
}

/* A list of scalars into a growing array: each item parsed by item_fn. */
static void
conf_set_cidrs(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	struct conf_cidr **arr = dst;
	size_t *count = (size_t *)((char *)dst - k->off + k->off2), i, saved = ctx->path.len;

	free(*arr);
	*arr = NULL;
	*count = 0;
	if (!conf_is_list(ctx, v, "[127.0.0.0/8, \"::1/128\"]"))
		return;
	*arr = xcalloc(v->n > 0 ? v->n : 1, sizeof(**arr));
	for (i = 0; i < v->n; i++) {
		const char *why = NULL, *s;

		buf_printf(&ctx->path, "[%zu]", i);
		s = conf_scalar(ctx, v->items[i], "a network");
		if (s != NULL && conf_cidr_parse(s, &(*arr)[*count], &why) == -1)
			conf_load_value_error(ctx, v->items[i],
			    "%s is not a network: %s (use 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7)",
			    log_q(s), why);
		else if (s != NULL)
			(*count)++;
		buf_truncate(&ctx->path, saved);
	}
}

static void
conf_set_durations(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst)
{
	uint64_t **arr = dst;
	size_t *count = (size_t *)((char *)dst - k->off + k->off2), i, saved = ctx->path.len;

	free(*arr);
	*arr = NULL;
	*count = 0;
	if (!conf_is_list(ctx, v, "[1m, 5m, 1h]"))
		return;
	if (v->n == 0) {
		conf_load_value_error(ctx, v, "needs at least one duration");
		return;
	}
	*arr = xcalloc(v->n, sizeof(**arr));
	for (i = 0; i < v->n; i++) {
		buf_printf(&ctx->path, "[%zu]", i);
		if (conf_duration(ctx, k, v->items[i], &(*arr)[*count]) == 0)
			(*count)++;
		buf_truncate(&ctx->path, saved);
	}
}

static void
conf_set_strs(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	char ***arr = dst;
	size_t *count = (size_t *)((char *)dst - k->off + k->off2), i, saved = ctx->path.len;

	if (!conf_is_list(ctx, v, "[a, b]"))
		return;
	*arr = xcalloc(v->n > 0 ? v->n : 1, sizeof(**arr));
	for (i = 0; i < v->n; i++) {
		const char *s;

		buf_printf(&ctx->path, "[%zu]", i);
		s = conf_scalar(ctx, v->items[i], "a string");
		if (s != NULL && k->check != NULL && !k->check(s)) {
			conf_load_value_error(ctx, v->items[i], "%s is not %s", log_q(s),
			    k->check_what);
		} else if (s != NULL) {
			(*arr)[*count] = xstrdup(s);
			if (k->lower)
				str_lower((*arr)[*count]);
			(*count)++;
		}
		buf_truncate(&ctx->path, saved);
	}
}

/* dns.forward: a list of strings kept NULL-terminated too, as libunbound's callers want it. */
static void
conf_set_dns_forward(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst)
{
	char ***arr = dst;
	size_t *count = (size_t *)((char *)dst - k->off + k->off2);

	conf_set_strs(ctx, k, v, dst);
	if (*arr == NULL)
		return;
	*arr = xreallocarray(*arr, *count + 1, sizeof(**arr));
	(*arr)[*count] = NULL;
}

/* Route upstreams are names here; conf_finish() resolves them once every upstream is known. */
static void
conf_set_route_upstreams(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v,
    void *dst)
{
	size_t **arr = dst;
	size_t *count = (size_t *)((char *)dst - k->off + k->off2), i, saved = ctx->path.len;

	if (!conf_is_list(ctx, v, "[primary, backup]"))
		return;
	*arr = xcalloc(v->n > 0 ? v->n : 1, sizeof(**arr));
	*count = v->n;
	for (i = 0; i < v->n; i++) {
		buf_printf(&ctx->path, "[%zu]", i);
		(*arr)[i] = SIZE_MAX;
		(void)conf_scalar(ctx, v->items[i], "an upstream name");
		buf_truncate(&ctx->path, saved);
	}
}

static void conf_map_apply(struct conf_ctx *ctx, const struct conf_table *t, void *obj,
    const struct ynode *map, const struct ynode *owner);

static void
conf_set_map(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	if (v != NULL && v->kind != YNODE_MAP && v->kind != YNODE_BAD && !conf_load_is_null(v))
		conf_load_value_error(ctx, v, "expected a mapping (key: value), got %s",
		    conf_load_kind_name(v));
	conf_map_apply(ctx, k->sub, dst,
	    v != NULL && v->kind == YNODE_MAP ? v : NULL, v);
}

/* A list of mappings: listen, users, upstreams, routes. */
static void
conf_set_list(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	void **arr = dst;
	size_t *count = (size_t *)((char *)dst - k->off + k->off2), i, saved = ctx->path.len;

	if (!conf_is_list(ctx, v, "one \"- key: value\" entry each"))
		return;
	*arr = xcalloc(v->n > 0 ? v->n : 1, k->sub->size);
	*count = v->n;
	for (i = 0; i < v->n; i++) {
		const struct ynode *item = v->items[i];

		buf_printf(&ctx->path, "[%zu]", i);
		if (item->kind == YNODE_MAP)
			conf_map_apply(ctx, k->sub, (char *)*arr + i * k->sub->size, item, item);
		else if (item->kind != YNODE_BAD)
			conf_load_value_error(ctx, item, "expected a mapping (key: value), got %s",
			    conf_load_kind_name(item));
		buf_truncate(&ctx->path, saved);
	}
}

/* ---- the walk ---- */

static void
conf_apply_default(struct conf_ctx *ctx, const struct conf_key *k, void *dst)
{
	struct ynode *dv = NULL;
	size_t before = ctx->n_msgs;

	int rc = conf_load_tree(ctx, k->dflt, strlen(k->dflt), &dv);

	HK_ASSERT(rc == 0 && dv != NULL);
	k->set(ctx, k, dv, dst);
	conf_load_tree_free(dv);
	HK_ASSERT(ctx->n_msgs == before);
}

static void
conf_unknown_key(struct conf_ctx *ctx, const struct conf_table *t, const struct ynode *key)
{
	const char *names[64];
	const char *best;
	struct buf all = BUF_INIT;
	size_t i;

	for (i = 0; i < t->n_keys; i++) {
		names[i] = t->keys[i].name;
		buf_printf(&all, "%s%s", i ? ", " : "", names[i]);
	}
	best = conf_closest(key->str, names, t->n_keys);
	if (best != NULL)
		conf_load_error(ctx, key, "unknown key %s in %s (did you mean \"%s\"?)",
		    log_q(key->str), conf_where(ctx), best);
	else
		conf_load_error(ctx, key, "unknown key %s in %s (known keys: %s)", log_q(key->str),
		    conf_where(ctx), all.ptr);
	buf_fini(&all);
}

/*
 * Apply table t to obj from map (NULL: absent, so only defaults). owner is where a missing
 * required key is reported (the mapping, or 1:1 for an empty file).
 */
static void
conf_map_apply(struct conf_ctx *ctx, const struct conf_table *t, void *obj, const struct ynode *map,
    const struct ynode *owner)
{
	const struct ynode *seen[64] = { NULL };
	size_t i, j, saved = ctx->path.len;

	HK_ASSERT(t->n_keys <= HK_ARRAY_LEN(seen));
	for (i = 0; map != NULL && i + 1 < map->n; i += 2) {
		const struct ynode *key = map->items[i], *val = map->items[i + 1];

		if (key->kind == YNODE_BAD)
			continue;
		if (key->kind != YNODE_SCALAR) {
			conf_load_error(ctx, key, "keys must be plain words, not %s",
			    conf_load_kind_name(key));
			continue;
		}
		for (j = 0; j < t->n_keys; j++) {
			if (strcmp(key->str, t->keys[j].name) == 0)
				break;
		}
		if (j == t->n_keys) {
			conf_unknown_key(ctx, t, key);
			continue;
		}
		if (seen[j] != NULL) {
			conf_load_error(ctx, key, "duplicate key %s in %s (first at %u:%u)",
			    log_q(key->str), conf_where(ctx), seen[j]->line, seen[j]->col);
			continue;
		}
		seen[j] = key;
		conf_path_key(ctx, key->str);
		t->keys[j].set(ctx, &t->keys[j], val, conf_field(obj, t->keys[j].off));
		buf_truncate(&ctx->path, saved);
	}
	for (j = 0; j < t->n_keys; j++) {
		const struct conf_key *k = &t->keys[j];

		if (seen[j] != NULL)
			continue;
		conf_path_key(ctx, k->name);
		if (k->required) {
			buf_truncate(&ctx->path, saved);
			conf_load_error(ctx, owner, "missing required key \"%s\" in %s", k->name,
			    conf_where(ctx));
		} else if (k->dflt != NULL) {
			conf_apply_default(ctx, k, conf_field(obj, k->off));
		} else if (k->set == conf_set_map) {
			conf_set_map(ctx, k, NULL, conf_field(obj, k->off));
		}
		buf_truncate(&ctx->path, saved);
	}
	if (t->finish != NULL)
		t->finish(ctx, obj, map);
}

/* ---- finish hooks: defaults and checks that need several keys ---- */

static void
conf_listener_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	struct conf_listener *l = obj;

	if (l->name == NULL && l->addr.text != NULL)
		l->name = xstrdup(l->addr.text);
	l->implicit_submission = l->tls == CONF_TLS_IMPLICIT;
	if ((l->relay & CONF_RELAY_AUTHENTICATED) && l->auth == CONF_AUTH_NONE)
		conf_load_value_error(ctx, conf_load_map_get(map, "relay"),
		    "relay: authenticated needs auth: optional or auth: required");
	/* AUTH is only offered over TLS, so this listener could never authenticate anyone. */
	if (l->auth != CONF_AUTH_NONE && l->tls == CONF_TLS_NONE && !l->allow_insecure_auth)
		conf_load_value_error(ctx, conf_load_map_get(map, "auth"),
		    "auth without TLS would send passwords in clear; use tls: starttls or "
		    "tls: implicit (or allow_insecure_auth: true on a trusted network)");
}

static void
conf_upstream_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	struct conf_upstream *u = obj;
	const struct ynode *user = conf_load_map_get(map, "username");
	const struct ynode *pass = conf_load_map_get(map, "password_file");

	if (conf_load_map_get(map, "port") == NULL)
		u->port = u->tls == CONF_TLS_IMPLICIT ? 465 : u->tls == CONF_TLS_NONE ? 25 : 587;
	/* Judge by the keys written, so a refused value does not cause a second report. */
	if (user != NULL && pass == NULL)
		conf_load_value_error(ctx, user,
		    "username needs password_file (a file holding the password)");
	if (user == NULL && pass != NULL)
		conf_load_value_error(ctx, pass, "password_file needs username");
	if (user != NULL && u->tls == CONF_TLS_NONE)
		conf_load_value_error(ctx, conf_load_map_get(map, "tls"),
		    "tls: none with a username would send the password in clear; use tls: starttls "
		    "or tls: implicit");
}

static void
conf_route_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	struct conf_route *r = obj;
	const struct ynode *at = conf_load_map_get(map, "name");

	if (at == NULL)
		at = map;
	if (r->n_upstreams == 0 && !r->mx)
		conf_load_value_error(ctx, at,
		    "a route needs upstreams: [name, ...] or mx: true");
	else if (r->n_upstreams > 0 && r->mx)
		conf_load_value_error(ctx, conf_load_map_get(map, "mx"),
		    "a route has either upstreams or mx: true, not both");
}

/* True when path opens as a regular file; else records why at `at`. */
static bool
conf_file_readable(struct conf_ctx *ctx, const struct ynode *at, const char *key,
    const char *path)
{
	struct stat st;
	int fd = fsops_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);

	if (fd == -1) {
		conf_load_error(ctx, at, "%s: cannot read %s: %s", key, log_q(path),
		    strerror(errno));
		return false;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		conf_load_error(ctx, at, "%s: %s is not a regular file", key, log_q(path));
		fsops_close(fd);
		return false;
	}
	fsops_close(fd);
	return true;
}

/*
 * Files of the dns section are checked here, not by their keys: the defaults name system files
 * that only matter when used (the trust anchor with dnssec: true, resolv.conf without forward).
 */
static void
conf_dns_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	struct conf *c = obj;
	const struct ynode *at;

	if (!ctx->check_files)
		return;
	if (c->dns_dnssec && c->dns_trust_anchor != NULL) {
		at = conf_load_map_get(map, "trust_anchor");
		if (at == NULL)
			at = conf_load_map_get(map, "dnssec");
		(void)conf_file_readable(ctx, at, "dns.trust_anchor", c->dns_trust_anchor);
	}
	at = conf_load_map_get(map, "resolv_conf");
	if (c->n_dns_forward == 0 && at != NULL && c->dns_resolv_conf != NULL)
		(void)conf_file_readable(ctx, at, "dns.resolv_conf", c->dns_resolv_conf);
}

/* Report names[i] equal to an earlier one, at item i's key (else key2, else the item). */
static void
conf_check_unique(struct conf_ctx *ctx, const char *list, const char *const *names, size_t n,
    const struct ynode *seq, const char *key, const char *key2)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; names[i] != NULL && j < i; j++) {
			const struct ynode *item, *at;

			if (names[j] == NULL || strcmp(names[i], names[j]) != 0)
				continue;
			item = conf_load_seq_item(seq, i);
			at = conf_load_map_get(item, key);
			if (at == NULL && key2 != NULL)
				at = conf_load_map_get(item, key2);
			conf_load_error(ctx, at != NULL ? at : item,
			    "%s[%zu]: duplicate name %s (also %s[%zu])", list, i, log_q(names[i]),
			    list, j);
			break;
		}
	}
}

static void
conf_check_names(struct conf_ctx *ctx, struct conf *c)
{
	const char **names;
	size_t i, n = c->n_listeners + c->n_users + c->n_upstreams + c->n_routes + 1;

	names = xcalloc(n, sizeof(*names));
	for (i = 0; i < c->n_listeners; i++)
		names[i] = c->listeners[i].name;
	conf_check_unique(ctx, "listen", names, c->n_listeners,
	    conf_load_map_get(ctx->root, "listen"), "name", "address");
	for (i = 0; i < c->n_users; i++)
		names[i] = c->users[i].name;
	conf_check_unique(ctx, "users", names, c->n_users, conf_load_map_get(ctx->root, "users"),
	    "name", NULL);
	for (i = 0; i < c->n_upstreams; i++)
		names[i] = c->upstreams[i].name;
	conf_check_unique(ctx, "upstreams", names, c->n_upstreams,
	    conf_load_map_get(ctx->root, "upstreams"), "name", NULL);
	for (i = 0; i < c->n_routes; i++)
		names[i] = c->routes[i].name;
	conf_check_unique(ctx, "routes", names, c->n_routes, conf_load_map_get(ctx->root, "routes"),
	    "name", NULL);
	free(names);
}

/* Resolve route upstream names to indexes; check match.listener and match.user references. */
static void
conf_check_routes(struct conf_ctx *ctx, struct conf *c)
{
	const struct ynode *routes = conf_load_map_get(ctx->root, "routes");
	const char **names = xcalloc(c->n_upstreams + 1, sizeof(*names));
	size_t i, j, u;

	for (u = 0; u < c->n_upstreams; u++)
		names[u] = c->upstreams[u].name;
	for (i = 0; i < c->n_routes; i++) {
		struct conf_route *r = &c->routes[i];
		const struct ynode *item = conf_load_seq_item(routes, i);
		const struct ynode *ups = conf_load_map_get(item, "upstreams");
		const struct ynode *match = conf_load_map_get(item, "match");

		for (j = 0; j < r->n_upstreams; j++) {
			const struct ynode *nn = conf_load_seq_item(ups, j);
			const char *best;
			size_t k;

			if (nn == NULL || nn->kind != YNODE_SCALAR)
				continue;
			for (u = 0; u < c->n_upstreams; u++) {
				if (names[u] != NULL && strcmp(names[u], nn->str) == 0)
					break;
			}
			if (u == c->n_upstreams) {
				best = conf_closest(nn->str, names, c->n_upstreams);
				conf_load_error(ctx, nn,
				    "routes[%zu].upstreams[%zu]: unknown upstream %s%s%s%s", i, j,
				    log_q(nn->str), best ? " (did you mean \"" : "",
				    best ? best : "", best ? "\"?)" : "");
				continue;
			}
			for (k = 0; k < j; k++) {
				if (r->upstreams[k] == u) {
					conf_load_error(ctx, nn, "routes[%zu].upstreams[%zu]: "
					    "upstream %s is listed twice", i, j, log_q(nn->str));
					break;
				}
			}
			r->upstreams[j] = u;
		}
		for (j = 0; j < r->n_listeners; j++) {
			for (u = 0; u < c->n_listeners; u++) {
				if (c->listeners[u].name != NULL &&
				    strcmp(c->listeners[u].name, r->listeners[j]) == 0)
					break;
			}
			if (u == c->n_listeners)
				conf_load_error(ctx,
				    conf_load_seq_item(conf_load_map_get(match, "listener"), j),
				    "routes[%zu].match.listener: no listener is named %s", i,
				    log_q(r->listeners[j]));
		}
		for (j = 0; j < r->n_users; j++) {
			if (conf_user_find(c, r->users[j]) == NULL)
				conf_load_error(ctx,
				    conf_load_seq_item(conf_load_map_get(match, "user"), j),
				    "routes[%zu].match.user: no user is named %s", i,
				    log_q(r->users[j]));
		}
	}
	free(names);
}

static void
conf_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	struct conf *c = obj;
	const struct ynode *listen = conf_load_map_get(map, "listen"), *routes;
	const struct ynode *tls = conf_load_map_get(map, "tls");
	char host[256];
	size_t i;

	if (c->hostname == NULL || c->node == NULL) {
		if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0' ||
		    memchr(host, '\0', sizeof(host)) == NULL || !conf_net_is_hostname(host))
			memcpy(host, "localhost", sizeof("localhost"));
		if (c->hostname == NULL)
			c->hostname = xstrdup(host);
		if (c->node == NULL)
			c->node = xstrndup(host, strcspn(host, "."));
	}
	if (conf_load_map_get(map, "node_id") == NULL)
		c->node_id = crc32c(0, c->node, strlen(c->node)) & 0xff;
	if (c->api_control_socket == NULL && c->state != NULL) {
		size_t n = strlen(c->state);

		c->api_control_socket = xasprintf("%s%scontrol.sock", c->state,
		    n > 0 && c->state[n - 1] == '/' ? "" : "/");
	}
	if (c->sendmail_socket == NULL && c->api_control_socket != NULL)
		c->sendmail_socket = conf_sendmail_socket_default(c->api_control_socket);
	for (i = 0; i < c->n_upstreams; i++) {
		if (c->upstreams[i].helo == NULL)
			c->upstreams[i].helo = xstrdup(c->hostname);
	}
	for (i = 0; i < c->n_listeners; i++) {
		const struct conf_listener *l = &c->listeners[i];
		const struct ynode *item = conf_load_seq_item(listen, i);
		const struct ynode *at = conf_load_map_get(item, "tls");

		/* Keys present but refused were reported already: do not pile on. */
		if (l->tls == CONF_TLS_NONE || (conf_load_map_get(tls, "cert") != NULL &&
		    conf_load_map_get(tls, "key") != NULL))
			continue;
		conf_load_error(ctx, at != NULL ? at : item,
		    "listen[%zu].tls: %s needs a certificate: set tls: { cert: FILE, key: FILE } "
		    "at the top level", i, l->tls == CONF_TLS_STARTTLS ? "starttls" : "implicit");
	}
	conf_check_names(ctx, c);
	conf_check_routes(ctx, c);
	routes = conf_load_map_get(map, "routes");
	if (routes != NULL &&
	    (conf_load_is_null(routes) || (routes->kind == YNODE_SEQ && routes->n == 0)))
		conf_load_error(ctx, routes,
		    "routes: needs at least one route (mail must go somewhere)");
}

/* ---- the schema ---- */

#define CONF_KEYS(a) .keys = (a), .n_keys = HK_ARRAY_LEN(a)
#define CONF_DAY_MS (86400000ull)
#define CONF_DURATION(lo, hi) .set = conf_set_duration, .min = (lo), .max = (hi)

static const struct conf_enum conf_tls_enum[] = {
	{ "none", CONF_TLS_NONE }, { "starttls", CONF_TLS_STARTTLS },
	{ "implicit", CONF_TLS_IMPLICIT }, { NULL, 0 },
};

static const struct conf_enum conf_auth_enum[] = {
	{ "none", CONF_AUTH_NONE }, { "optional", CONF_AUTH_OPTIONAL },
	{ "required", CONF_AUTH_REQUIRED }, { NULL, 0 },
};

static const struct conf_enum conf_relay_enum[] = {
	{ "networks", CONF_RELAY_NETWORKS }, { "authenticated", CONF_RELAY_AUTHENTICATED },
	{ NULL, 0 },
};

static const struct conf_enum conf_trace_enum[] = {
	{ "smtpd", TRACE_SMTPD }, { "smtpc", TRACE_SMTPC }, { "spool", TRACE_SPOOL }, { NULL, 0 },
};

static const struct conf_enum conf_level_enum[] = {
	{ "debug", LOG_LEVEL_DEBUG }, { "info", LOG_LEVEL_INFO }, { "warn", LOG_LEVEL_WARN },
	{ "error", LOG_LEVEL_ERROR }, { NULL, 0 },
};

static const struct conf_key conf_listener_keys[] = {
	{ .name = "address", .set = conf_set_addr, .off = offsetof(struct conf_listener, addr),
	  .required = true },
	{ .name = "name", .set = conf_set_str, .off = offsetof(struct conf_listener, name),
	  .check = conf_is_printable, .check_what = "a name (printable, no spaces)" },
	{ .name = "tls", .set = conf_set_enum, .off = offsetof(struct conf_listener, tls),
	  .dflt = "none", .enums = conf_tls_enum },
	{ .name = "auth", .set = conf_set_enum, .off = offsetof(struct conf_listener, auth),
	  .dflt = "none", .enums = conf_auth_enum },
	{ .name = "relay", .set = conf_set_flags, .off = offsetof(struct conf_listener, relay),
	  .dflt = "networks", .enums = conf_relay_enum, .min = 1 },
	{ .name = "allow_insecure_auth", .set = conf_set_bool,
	  .off = offsetof(struct conf_listener, allow_insecure_auth), .dflt = "false" },
};

static const struct conf_table conf_listener_table = {
	CONF_KEYS(conf_listener_keys), .size = sizeof(struct conf_listener),
	.finish = conf_listener_finish,
};

static const struct conf_key conf_tls_keys[] = {
	{ .name = "cert", .set = conf_set_path, .off = offsetof(struct conf, tls_cert),
	  .readable = true },
	{ .name = "key", .set = conf_set_path, .off = offsetof(struct conf, tls_key),
	  .readable = true },
};

static const struct conf_table conf_tls_table = { CONF_KEYS(conf_tls_keys) };

static const struct conf_key conf_user_keys[] = {
	{ .name = "name", .set = conf_set_str, .off = offsetof(struct conf_user, name),
	  .required = true, .check = conf_is_printable,
	  .check_what = "a user name (printable, no spaces)" },
	{ .name = "password_hash", .set = conf_set_secret_hash,
	  .off = offsetof(struct conf_user, password_hash), .required = true },
};

static const struct conf_table conf_user_table = {
	CONF_KEYS(conf_user_keys), .size = sizeof(struct conf_user),
};

static const struct conf_key conf_limits_keys[] = {
	{ .name = "max_message_size", .set = conf_set_size,
	  .off = offsetof(struct conf_limits, max_message_size), .dflt = "25M", .min = 1 },
	{ .name = "max_recipients", .set = conf_set_uint,
	  .off = offsetof(struct conf_limits, max_recipients), .dflt = "1000", .min = 1,
	  .max = 1000000 },
	{ .name = "max_line", .set = conf_set_uint, .off = offsetof(struct conf_limits, max_line),
	  .dflt = "8192", .min = 1000, .max = 1048576 },
	{ .name = "max_connections", .set = conf_set_uint,
	  .off = offsetof(struct conf_limits, max_connections), .dflt = "1000", .min = 1,
	  .max = 1000000 },
	{ .name = "max_connections_per_ip", .set = conf_set_uint,
	  .off = offsetof(struct conf_limits, max_connections_per_ip), .dflt = "100", .min = 1,
	  .max = 1000000 },
	{ .name = "max_errors", .set = conf_set_uint,
	  .off = offsetof(struct conf_limits, max_errors),
	  .dflt = "10", .min = 1, .max = 1000 },
	{ .name = "command_timeout", CONF_DURATION(1000, CONF_DAY_MS),
	  .off = offsetof(struct conf_limits, command_timeout_ms), .dflt = "5m" },
	{ .name = "data_timeout", CONF_DURATION(1000, CONF_DAY_MS),
	  .off = offsetof(struct conf_limits, data_timeout_ms), .dflt = "10m" },
	{ .name = "auth_failures_per_min", .set = conf_set_uint,
	  .off = offsetof(struct conf_limits, auth_failures_per_min), .dflt = "5", .min = 1,
	  .max = 1000000 },
	{ .name = "greet_pause", CONF_DURATION(0, 60000),
	  .off = offsetof(struct conf_limits, greet_pause_ms), .dflt = "5ms" },
};

static const struct conf_table conf_limits_table = { CONF_KEYS(conf_limits_keys) };

static const struct conf_key conf_upstream_limits_keys[] = {
	{ .name = "per_day", .set = conf_set_u64,
	  .off = offsetof(struct conf_upstream_limits, per_day),
	  .dflt = "0", .max = UINT32_MAX },
	{ .name = "per_hour", .set = conf_set_u64,
	  .off = offsetof(struct conf_upstream_limits, per_hour), .dflt = "0", .max = UINT32_MAX },
	{ .name = "rate", .set = conf_set_rate,
	  .off = offsetof(struct conf_upstream_limits, rate_count),
	  .off2 = offsetof(struct conf_upstream_limits, rate_period_ms) },
	{ .name = "connections", .set = conf_set_uint,
	  .off = offsetof(struct conf_upstream_limits, connections), .dflt = "4", .min = 1,
	  .max = 1000 },
	{ .name = "recipients_per_message", .set = conf_set_uint,
	  .off = offsetof(struct conf_upstream_limits, recipients_per_message), .dflt = "100",
	  .min = 1, .max = 100000 },
	{ .name = "max_size", .set = conf_set_size,
	  .off = offsetof(struct conf_upstream_limits, max_size), .dflt = "0" },
};

static const struct conf_table conf_upstream_limits_table = {
	CONF_KEYS(conf_upstream_limits_keys),
};

static const struct conf_key conf_upstream_keys[] = {
	{ .name = "name", .set = conf_set_str, .off = offsetof(struct conf_upstream, name),
	  .required = true, .check = conf_is_label,
	  .check_what = "a name (letters, digits, \"_\", \"-\", \".\"; up to 64)" },
	{ .name = "host", .set = conf_set_str, .off = offsetof(struct conf_upstream, host),
	  .required = true, .check = conf_is_host, .check_what = "a host name or IP address" },
	{ .name = "port", .set = conf_set_uint, .off = offsetof(struct conf_upstream, port),
	  .min = 1, .max = 65535 },
	{ .name = "tls", .set = conf_set_enum, .off = offsetof(struct conf_upstream, tls),
	  .dflt = "starttls", .enums = conf_tls_enum },
	{ .name = "verify", .set = conf_set_bool, .off = offsetof(struct conf_upstream, verify),
	  .dflt = "true" },
	{ .name = "ca_file", .set = conf_set_path, .off = offsetof(struct conf_upstream, ca_file),
	  .readable = true },
	{ .name = "username", .set = conf_set_str,
	  .off = offsetof(struct conf_upstream, username) },
	{ .name = "password_file", .set = conf_set_path,
	  .off = offsetof(struct conf_upstream, password_file), .readable = true },
	{ .name = "helo", .set = conf_set_str, .off = offsetof(struct conf_upstream, helo),
	  .check = conf_is_helo,
	  .check_what = "a host name or an address literal like [192.0.2.1]" },
	{ .name = "limits", .set = conf_set_map, .off = offsetof(struct conf_upstream, limits),
	  .sub = &conf_upstream_limits_table },
};

static const struct conf_table conf_upstream_table = {
	CONF_KEYS(conf_upstream_keys), .size = sizeof(struct conf_upstream),
	.finish = conf_upstream_finish,
};

#define CONF_DOMAINS .set = conf_set_strs, .check = conf_net_is_hostname, .lower = true, \
	.check_what = "a domain name"

static const struct conf_key conf_match_keys[] = {
	{ .name = "sender_domain", CONF_DOMAINS, .off = offsetof(struct conf_route, sender_domains),
	  .off2 = offsetof(struct conf_route, n_sender_domains) },
	{ .name = "recipient_domain", CONF_DOMAINS,
	  .off = offsetof(struct conf_route, recipient_domains),
	  .off2 = offsetof(struct conf_route, n_recipient_domains) },
	{ .name = "listener", .set = conf_set_strs, .off = offsetof(struct conf_route, listeners),
	  .off2 = offsetof(struct conf_route, n_listeners) },
	{ .name = "user", .set = conf_set_strs, .off = offsetof(struct conf_route, users),
	  .off2 = offsetof(struct conf_route, n_users) },
};

static const struct conf_table conf_match_table = { CONF_KEYS(conf_match_keys) };

static const struct conf_key conf_route_keys[] = {
	{ .name = "name", .set = conf_set_str, .off = offsetof(struct conf_route, name),
	  .required = true, .check = conf_is_label,
	  .check_what = "a name (letters, digits, \"_\", \"-\", \".\"; up to 64)" },
	{ .name = "match", .set = conf_set_map, .off = 0, .sub = &conf_match_table },
	{ .name = "upstreams", .set = conf_set_route_upstreams,
	  .off = offsetof(struct conf_route, upstreams),
	  .off2 = offsetof(struct conf_route, n_upstreams) },
	{ .name = "mx", .set = conf_set_bool, .off = offsetof(struct conf_route, mx),
	  .dflt = "false" },
};

static const struct conf_table conf_route_table = {
	CONF_KEYS(conf_route_keys), .size = sizeof(struct conf_route), .finish = conf_route_finish,
};

static const struct conf_key conf_retry_keys[] = {
	{ .name = "schedule", .set = conf_set_durations, .min = 1000, .max = 30 * CONF_DAY_MS,
	  .off = offsetof(struct conf, retry_schedule_ms), .off2 = offsetof(struct conf, n_retry),
	  .dflt = "[1m, 5m, 15m, 1h, 4h]" },
	{ .name = "max_age", CONF_DURATION(1000, 365 * CONF_DAY_MS),
	  .off = offsetof(struct conf, retry_max_age_ms), .dflt = "5d" },
};

static const struct conf_table conf_retry_table = { CONF_KEYS(conf_retry_keys) };

static const struct conf_key conf_api_keys[] = {
	{ .name = "listen", .set = conf_set_addr, .off = offsetof(struct conf, api_listen),
	  .dflt = "127.0.0.1:8025" },
	{ .name = "token_file", .set = conf_set_path, .off = offsetof(struct conf, api_token_file),
	  .readable = true },
	{ .name = "control_socket", .set = conf_set_path,
	  .off = offsetof(struct conf, api_control_socket) },
};

static const struct conf_table conf_api_table = { CONF_KEYS(conf_api_keys) };

static const struct conf_key conf_sendmail_keys[] = {
	{ .name = "socket", .set = conf_set_socket_path,
	  .off = offsetof(struct conf, sendmail_socket) },
};

static const struct conf_table conf_sendmail_table = { CONF_KEYS(conf_sendmail_keys) };

static const struct conf_key conf_log_postfix_keys[] = {
	{ .name = "target", .set = conf_set_str, .off = offsetof(struct conf, log_postfix_target) },
	{ .name = "tag", .set = conf_set_str, .off = offsetof(struct conf, log_postfix_tag),
	  .dflt = "hikyaku", .check = conf_is_label,
	  .check_what = "a syslog tag (letters, digits, \"_\", \"-\", \".\"; up to 64)" },
};

static const struct conf_table conf_log_postfix_table = { CONF_KEYS(conf_log_postfix_keys) };

static const struct conf_key conf_delivery_keys[] = {
	{ .name = "connect_timeout", CONF_DURATION(100, 600000),
	  .off = offsetof(struct conf, delivery_connect_timeout_ms), .dflt = "10s" },
	{ .name = "command_timeout", CONF_DURATION(100, 3600000),
	  .off = offsetof(struct conf, delivery_command_timeout_ms), .dflt = "60s" },
	{ .name = "dot_timeout", CONF_DURATION(100, 7200000),
	  .off = offsetof(struct conf, delivery_dot_timeout_ms), .dflt = "10m" },
	{ .name = "mx_port", .set = conf_set_uint, .off = offsetof(struct conf, delivery_mx_port),
	  .dflt = "25", .min = 1, .max = 65535 },
	{ .name = "max_messages", .set = conf_set_uint,
	  .off = offsetof(struct conf, delivery_max_messages), .dflt = "1000", .min = 1,
	  .max = 1000000 },
	{ .name = "breaker_open", CONF_DURATION(100, 600000),
	  .off = offsetof(struct conf, delivery_breaker_open_ms), .dflt = "30s" },
	{ .name = "connection_reuse", CONF_DURATION(0, 300000),
	  .off = offsetof(struct conf, delivery_idle_timeout_ms), .dflt = "5s" },
};

static const struct conf_table conf_delivery_table = { CONF_KEYS(conf_delivery_keys) };

static const struct conf_key conf_dns_keys[] = {
	{ .name = "forward", .set = conf_set_dns_forward, .off = offsetof(struct conf, dns_forward),
	  .off2 = offsetof(struct conf, n_dns_forward), .check = conf_is_dns_forward,
	  .check_what = "a resolver address (a numeric IP, optionally @port: 127.0.0.1@5353)" },
	{ .name = "resolv_conf", .set = conf_set_path, .off = offsetof(struct conf, dns_resolv_conf),
	  .dflt = "/etc/resolv.conf" },
	{ .name = "dnssec", .set = conf_set_bool, .off = offsetof(struct conf, dns_dnssec),
	  .dflt = "false" },
	{ .name = "trust_anchor", .set = conf_set_path,
	  .off = offsetof(struct conf, dns_trust_anchor), .dflt = "/usr/share/dns/root.key" },
	{ .name = "timeout", CONF_DURATION(100, 300000), .off = offsetof(struct conf, dns_timeout_ms),
	  .dflt = "10s" },
};

static const struct conf_table conf_dns_table = {
	CONF_KEYS(conf_dns_keys), .finish = conf_dns_finish,
};

static bool
conf_is_checks_ip(const char *s)
{
	return conf_net_is_ip(s);
}

static const struct conf_key conf_checks_keys[] = {
	{ .name = "interval", CONF_DURATION(0, 30 * CONF_DAY_MS),
	  .off = offsetof(struct conf, checks_interval_ms), .dflt = "6h" },
	{ .name = "domains", CONF_DOMAINS, .off = offsetof(struct conf, checks_domains),
	  .off2 = offsetof(struct conf, n_checks_domains) },
	{ .name = "selector", .set = conf_set_str, .off = offsetof(struct conf, checks_selector),
	  .check = conf_net_is_hostname, .check_what = "a DKIM selector (a DNS label)" },
	{ .name = "ips", .set = conf_set_strs, .off = offsetof(struct conf, checks_ips),
	  .off2 = offsetof(struct conf, n_checks_ips), .check = conf_is_checks_ip,
	  .check_what = "a numeric IPv4 or IPv6 address" },
	{ .name = "blocklists", CONF_DOMAINS, .off = offsetof(struct conf, checks_blocklists),
	  .off2 = offsetof(struct conf, n_checks_blocklists),
	  .dflt = "[zen.spamhaus.org, bl.spamcop.net, b.barracudacentral.org]" },
};

static const struct conf_table conf_checks_table = { CONF_KEYS(conf_checks_keys) };

static const struct conf_key conf_log_keys[] = {
	{ .name = "level", .set = conf_set_log_level, .off = offsetof(struct conf, log_level),
	  .dflt = "info", .enums = conf_level_enum },
	{ .name = "trace", .set = conf_set_flags, .off = offsetof(struct conf, log_trace),
	  .dflt = "[]", .enums = conf_trace_enum },
	{ .name = "retention", CONF_DURATION(CONF_DAY_MS, 3650 * CONF_DAY_MS),
	  .off = offsetof(struct conf, log_retention_ms), .dflt = "30d" },
	{ .name = "keep_bodies", .set = conf_set_bool,
	  .off = offsetof(struct conf, log_keep_bodies),
	  .dflt = "true" },
	{ .name = "postfix", .set = conf_set_map, .off = 0, .sub = &conf_log_postfix_table },
};

static const struct conf_table conf_log_table = { CONF_KEYS(conf_log_keys) };

/* ---- alerts.channels[] (src/alert/notify.h) ---- */

#define CONF_CH(t) (1u << (t))
#define CONF_CH_HTTP (CONF_CH(CONF_CHANNEL_SLACK) | CONF_CH(CONF_CHANNEL_TEAMS) | \
	CONF_CH(CONF_CHANNEL_WEBHOOK))

static const struct conf_enum conf_channel_type_enum[] = {
	{ "email", CONF_CHANNEL_EMAIL }, { "slack", CONF_CHANNEL_SLACK },
	{ "teams", CONF_CHANNEL_TEAMS }, { "twilio", CONF_CHANNEL_TWILIO },
	{ "webhook", CONF_CHANNEL_WEBHOOK }, { NULL, 0 },
};

/* Which type may (and which must) carry each type-specific key. */
static const struct {
	const char *key;
	unsigned types, required;
} conf_channel_keys_by_type[] = {
	{ "url", CONF_CH_HTTP, 0 },
	{ "url_file", CONF_CH_HTTP, 0 },
	{ "secret_file", CONF_CH(CONF_CHANNEL_WEBHOOK), CONF_CH(CONF_CHANNEL_WEBHOOK) },
	{ "base_url", CONF_CH(CONF_CHANNEL_TWILIO), 0 },
	{ "account_sid_file", CONF_CH(CONF_CHANNEL_TWILIO), CONF_CH(CONF_CHANNEL_TWILIO) },
	{ "auth_token_file", CONF_CH(CONF_CHANNEL_TWILIO), CONF_CH(CONF_CHANNEL_TWILIO) },
	{ "from", CONF_CH(CONF_CHANNEL_EMAIL) | CONF_CH(CONF_CHANNEL_TWILIO),
	  CONF_CH(CONF_CHANNEL_EMAIL) | CONF_CH(CONF_CHANNEL_TWILIO) },
	{ "to", CONF_CH(CONF_CHANNEL_EMAIL) | CONF_CH(CONF_CHANNEL_TWILIO),
	  CONF_CH(CONF_CHANNEL_EMAIL) | CONF_CH(CONF_CHANNEL_TWILIO) },
};

/* An http:// or https:// URL with a host, no spaces or control bytes. */
static bool
conf_is_http_url(const char *s)
{
	size_t skip;

	if (strncasecmp(s, "https://", 8) == 0)
		skip = 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		skip = 7;
	else
		return false;
	if (s[skip] == '\0' || s[skip] == '/' || strlen(s) > 2048)
		return false;
	for (; *s; s++) {
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

/* A plain mail address: local@domain, printable ASCII, no spaces or brackets. */
static bool
conf_is_mail_address(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || at == s || !conf_net_is_hostname(at + 1) || strlen(s) > 254)
		return false;
	for (; s < at; s++) {
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr("<>()[],;:\\\"",
		    *s) != NULL)
			return false;
	}
	return true;
}

/* An E.164 number: "+" and 8 to 15 digits. */
static bool
conf_is_phone(const char *s)
{
	size_t n;

	if (*s++ != '+')
		return false;
	n = strspn(s, "0123456789");
	return s[n] == '\0' && n >= 8 && n <= 15;
}

static void
conf_alert_channel_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	struct conf_alert_channel *ch = obj;
	const struct ynode *at = conf_load_map_get(map, "type");
	const char *tname = conf_channel_type_enum[ch->type].name;
	unsigned bit = CONF_CH(ch->type);
	size_t i;

	/* A missing or refused type was reported already: its keys cannot be judged. */
	if (at == NULL || at->kind != YNODE_SCALAR ||
	    conf_enum_find(conf_channel_type_enum, at->str) == NULL)
		return;
	for (i = 0; i < HK_ARRAY_LEN(conf_channel_keys_by_type); i++) {
		const char *key = conf_channel_keys_by_type[i].key;
		const struct ynode *v = conf_load_map_get(map, key);

		if (v != NULL && !(conf_channel_keys_by_type[i].types & bit))
			conf_load_value_error(ctx, v, "%s is not a key of a %s channel", key, tname);
		else if (v == NULL && (conf_channel_keys_by_type[i].required & bit))
			conf_load_value_error(ctx, at, "a %s channel needs %s", tname, key);
	}
	if ((bit & CONF_CH_HTTP) && (conf_load_map_get(map, "url") == NULL) ==
	    (conf_load_map_get(map, "url_file") == NULL))
		conf_load_value_error(ctx, at, "a %s channel needs either url or url_file (a file "
		    "holding the URL), not both", tname);
	if (ch->type == CONF_CHANNEL_TWILIO && ch->base_url == NULL)
		ch->base_url = xstrdup("https://api.twilio.com");
	at = conf_load_map_get(map, "to");
	if (at != NULL && at->kind == YNODE_SEQ && at->n == 0)
		conf_load_value_error(ctx, at, "needs at least one recipient");
	for (i = 0; i < ch->n_to; i++) {
		bool ok = ch->type == CONF_CHANNEL_TWILIO ? conf_is_phone(ch->to[i]) :
		    conf_is_mail_address(ch->to[i]);

		if (!ok)
			conf_load_value_error(ctx, conf_load_seq_item(at, i), "%s is not %s",
			    log_q(ch->to[i]), ch->type == CONF_CHANNEL_TWILIO ?
			    "a phone number in E.164 form (+15551234567)" : "a mail address");
	}
	at = conf_load_map_get(map, "from");
	if (ch->from != NULL && ch->type == CONF_CHANNEL_EMAIL && !conf_is_mail_address(ch->from))
		conf_load_value_error(ctx, at, "%s is not a mail address", log_q(ch->from));
	if (ch->from != NULL && ch->type == CONF_CHANNEL_TWILIO && !conf_is_phone(ch->from))
		conf_load_value_error(ctx, at, "%s is not a phone number in E.164 form "
		    "(+15551234567)", log_q(ch->from));
	if (ch->backoff_max_ms < ch->backoff_ms)
		conf_load_value_error(ctx, conf_load_map_get(map, "backoff_max"),
		    "backoff_max is shorter than backoff");
}

#define CONF_URL .set = conf_set_str, .check = conf_is_http_url, \
	.check_what = "an http:// or https:// URL"
#define CONF_SECRET_FILE .set = conf_set_path, .readable = true

static const struct conf_key conf_alert_channel_keys[] = {
	{ .name = "name", .set = conf_set_str, .off = offsetof(struct conf_alert_channel, name),
	  .required = true, .check = conf_is_label,
	  .check_what = "a name (letters, digits, \"_\", \"-\", \".\"; up to 64)" },
	{ .name = "type", .set = conf_set_enum, .off = offsetof(struct conf_alert_channel, type),
	  .required = true, .enums = conf_channel_type_enum },
	{ .name = "url", CONF_URL, .off = offsetof(struct conf_alert_channel, url) },
	{ .name = "url_file", CONF_SECRET_FILE,
	  .off = offsetof(struct conf_alert_channel, url_file) },
	{ .name = "secret_file", CONF_SECRET_FILE,
	  .off = offsetof(struct conf_alert_channel, secret_file) },
	{ .name = "base_url", CONF_URL, .off = offsetof(struct conf_alert_channel, base_url) },
	{ .name = "account_sid_file", CONF_SECRET_FILE,
	  .off = offsetof(struct conf_alert_channel, account_sid_file) },
	{ .name = "auth_token_file", CONF_SECRET_FILE,
	  .off = offsetof(struct conf_alert_channel, auth_token_file) },
	{ .name = "from", .set = conf_set_str, .off = offsetof(struct conf_alert_channel, from) },
	{ .name = "to", .set = conf_set_strs, .off = offsetof(struct conf_alert_channel, to),
	  .off2 = offsetof(struct conf_alert_channel, n_to) },
	{ .name = "timeout", CONF_DURATION(100, 600000),
	  .off = offsetof(struct conf_alert_channel, timeout_ms), .dflt = "10s" },
	{ .name = "retries", .set = conf_set_uint,
	  .off = offsetof(struct conf_alert_channel, retries), .dflt = "3", .max = 20 },
	{ .name = "backoff", CONF_DURATION(10, 3600000),
	  .off = offsetof(struct conf_alert_channel, backoff_ms), .dflt = "2s" },
	{ .name = "backoff_max", CONF_DURATION(10, CONF_DAY_MS),
	  .off = offsetof(struct conf_alert_channel, backoff_max_ms), .dflt = "5m" },
};

static const struct conf_table conf_alert_channel_table = {
	CONF_KEYS(conf_alert_channel_keys), .size = sizeof(struct conf_alert_channel),
	.finish = conf_alert_channel_finish,
};

/* Checks over every channel: names are unique (rules and the CLI address channels by name). */
static void
conf_alert_channels_check(struct conf_ctx *ctx, struct conf *c, const struct ynode *alerts)
{
	const char **names = xcalloc(c->n_alert_channels + 1, sizeof(*names));
	size_t i;

	for (i = 0; i < c->n_alert_channels; i++)
		names[i] = c->alert_channels[i].name;
	conf_check_unique(ctx, "alerts.channels", names, c->n_alert_channels,
	    conf_load_map_get(alerts, "channels"), "name", NULL);
	free(names);
}

/* ---- alerts.rules[] (src/alert/alert_rules.h) ---- */

static const struct conf_enum conf_alert_when_enum[] = {
	{ "permanent_failure", CONF_ALERT_PERMANENT_FAILURE }, { "deferred", CONF_ALERT_DEFERRED },
	{ "upstream_down", CONF_ALERT_UPSTREAM_DOWN }, { "failover", CONF_ALERT_FAILOVER },
	{ "quota", CONF_ALERT_QUOTA }, { "queue_size", CONF_ALERT_QUEUE_SIZE },
	{ "queue_age", CONF_ALERT_QUEUE_AGE }, { "bounce_rate", CONF_ALERT_BOUNCE_RATE },
	{ "deferral_rate", CONF_ALERT_DEFERRAL_RATE }, { "auth_failures", CONF_ALERT_AUTH_FAILURES },
	{ "cert_expiry", CONF_ALERT_CERT_EXPIRY }, { "disk_free", CONF_ALERT_DISK_FREE },
	{ "dns_check", CONF_ALERT_DNS_CHECK },
	{ NULL, 0 },
};

static const struct conf_enum conf_alert_group_enum[] = {
	{ "upstream", CONF_ALERT_GROUP_UPSTREAM }, { "domain", CONF_ALERT_GROUP_DOMAIN },
	{ "rule", CONF_ALERT_GROUP_RULE }, { NULL, 0 },
};

/*
 * Per condition: the threshold's unit and range, its default, the default grouping, and whether
 * the message filters (sender_domain, recipient_domain, route) can apply.
 */
enum conf_alert_unit { CONF_ALERT_COUNT, CONF_ALERT_PERCENT, CONF_ALERT_DURATION };

static const struct {
	enum conf_alert_unit unit;
	uint64_t min, max;
	const char *dflt;
	enum conf_alert_group group;
	bool message;
} conf_alert_when_info[CONF_ALERT_WHEN_COUNT] = {
	[CONF_ALERT_PERMANENT_FAILURE] = { CONF_ALERT_COUNT, 1, 1000000000, "1",
	    CONF_ALERT_GROUP_RULE, true },
	[CONF_ALERT_DEFERRED] = { CONF_ALERT_DURATION, 1000, 365 * CONF_DAY_MS, "1h",
	    CONF_ALERT_GROUP_RULE, true },
	[CONF_ALERT_UPSTREAM_DOWN] = { CONF_ALERT_COUNT, 1, 1, "1", CONF_ALERT_GROUP_UPSTREAM,
	    false },
	[CONF_ALERT_FAILOVER] = { CONF_ALERT_COUNT, 1, 1000000000, "1", CONF_ALERT_GROUP_UPSTREAM,
	    true },
	[CONF_ALERT_QUOTA] = { CONF_ALERT_PERCENT, 1, 100, "90", CONF_ALERT_GROUP_UPSTREAM, false },
	[CONF_ALERT_QUEUE_SIZE] = { CONF_ALERT_COUNT, 1, 1000000000, "1000", CONF_ALERT_GROUP_RULE,
	    false },
	[CONF_ALERT_QUEUE_AGE] = { CONF_ALERT_DURATION, 1000, 365 * CONF_DAY_MS, "1h",
	    CONF_ALERT_GROUP_RULE, false },
	[CONF_ALERT_BOUNCE_RATE] = { CONF_ALERT_PERCENT, 1, 100, "5", CONF_ALERT_GROUP_RULE, true },
	[CONF_ALERT_DEFERRAL_RATE] = { CONF_ALERT_PERCENT, 1, 100, "20", CONF_ALERT_GROUP_RULE,
	    true },
	[CONF_ALERT_AUTH_FAILURES] = { CONF_ALERT_COUNT, 1, 1000000000, "10", CONF_ALERT_GROUP_RULE,
	    false },
	[CONF_ALERT_CERT_EXPIRY] = { CONF_ALERT_DURATION, CONF_DAY_MS, 365 * CONF_DAY_MS, "14d",
	    CONF_ALERT_GROUP_UPSTREAM, false },
	[CONF_ALERT_DISK_FREE] = { CONF_ALERT_PERCENT, 1, 99, "10", CONF_ALERT_GROUP_RULE, false },
	[CONF_ALERT_DNS_CHECK] = { CONF_ALERT_COUNT, 1, 1000000000, "1", CONF_ALERT_GROUP_DOMAIN,
	    false },
};

/* Keys parsed by a finish hook (they depend on others): only the kind is checked here. */
static void
conf_set_later(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	(void)conf_scalar(ctx, v, k->check_what);
}

/* "HH:MM" into minutes of the day; -1 when malformed. */
static int
conf_hhmm(const char *s, size_t len)
{
	uint64_t h, m;

	if (len != 5 || s[2] != ':' || num_parse_u64(s, 2, 24, &h) == -1 ||
	    num_parse_u64(s + 3, 2, 59, &m) == -1 || (h == 24 && m != 0))
		return -1;
	return (int)(h * 60 + m);
}

static void
conf_set_hours(struct conf_ctx *ctx, const struct conf_key *k, const struct ynode *v, void *dst)
{
	struct conf_alert_rule *r = (struct conf_alert_rule *)((char *)dst - k->off);
	const char *s = conf_scalar(ctx, v, "a time of day window (\"08:00-20:00\")"), *dash;
	int from, to;

	if (s == NULL)
		return;
	dash = strchr(s, '-');
	from = dash != NULL ? conf_hhmm(s, (size_t)(dash - s)) : -1;
	to = dash != NULL ? conf_hhmm(dash + 1, strlen(dash + 1)) : -1;
	if (from < 0 || to < 0 || from == to) {
		conf_load_value_error(ctx, v, "%s is not a time of day window (\"08:00-20:00\", local "
		    "time; \"20:00-08:00\" spans midnight)", log_q(s));
		return;
	}
	r->hours_from = from;
	r->hours_to = to % 1440;
}

static void
conf_alert_threshold_parse(struct conf_ctx *ctx, struct conf_alert_rule *r, const struct ynode *v)
{
	const char *name = conf_alert_when_enum[r->when].name;
	struct conf_key k = { .name = "threshold", .min = conf_alert_when_info[r->when].min,
	    .max = conf_alert_when_info[r->when].max };
	struct ynode tmp;
	uint64_t n;

	switch (conf_alert_when_info[r->when].unit) {
	case CONF_ALERT_DURATION:
		if (conf_duration(ctx, &k, v, &n) == 0)
			r->threshold = n;
		return;
	case CONF_ALERT_PERCENT:
		/* "20%" and "20" are the same. */
		tmp = *v;
		if (v->kind == YNODE_SCALAR && v->len > 1 && v->str[v->len - 1] == '%') {
			tmp.str = xstrndup(v->str, v->len - 1);
			tmp.len = v->len - 1;
		}
		if (conf_number(ctx, &k, &tmp, &n) == 0)
			r->threshold = n;
		if (tmp.str != v->str)
			free(tmp.str);
		return;
	case CONF_ALERT_COUNT:
		if (r->when == CONF_ALERT_UPSTREAM_DOWN && r->has_threshold) {
			conf_load_value_error(ctx, v, "%s takes no threshold (it opens when the "
			    "upstream's breaker opens)", name);
			return;
		}
		if (conf_number(ctx, &k, v, &n) == 0)
			r->threshold = n;
		return;
	}
}

/* Parsed once "when" is known, reported as alerts.rules[i].threshold. */
static void
conf_alert_threshold(struct conf_ctx *ctx, struct conf_alert_rule *r, const struct ynode *v)
{
	size_t saved = ctx->path.len;

	buf_append_str(&ctx->path, ".threshold");
	conf_alert_threshold_parse(ctx, r, v);
	buf_truncate(&ctx->path, saved);
}

static void
conf_alert_rule_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	struct conf_alert_rule *r = obj;
	const struct ynode *when = conf_load_map_get(map, "when");
	const struct ynode *at;
	struct ynode *dv = NULL;

	if (when == NULL || when->kind != YNODE_SCALAR ||
	    conf_enum_find(conf_alert_when_enum, when->str) == NULL)
		return;
	at = conf_load_map_get(map, "threshold");
	r->has_threshold = at != NULL;
	if (at == NULL) {
		int rc = conf_load_tree(ctx, conf_alert_when_info[r->when].dflt,
		    strlen(conf_alert_when_info[r->when].dflt), &dv);

		HK_ASSERT(rc == 0 && dv != NULL);
		at = dv;
	}
	if (at->kind == YNODE_SCALAR)
		conf_alert_threshold(ctx, r, at);
	conf_load_tree_free(dv);
	r->has_group_by = conf_load_map_get(map, "group_by") != NULL;
	if (!r->has_group_by)
		r->group_by = conf_alert_when_info[r->when].group;
	r->has_window = conf_load_map_get(map, "window") != NULL;
	if (!r->has_window)
		r->window_ms = r->when == CONF_ALERT_AUTH_FAILURES ? 60000 :
		    r->when == CONF_ALERT_DNS_CHECK ? CONF_DAY_MS : 300000;
	at = conf_load_map_get(map, "filters");
	if (!conf_alert_when_info[r->when].message &&
	    (r->n_sender_domains > 0 || r->n_recipient_domains > 0 || r->n_routes > 0))
		conf_load_value_error(ctx, at, "%s is not about messages: only filters.hours "
		    "applies to it", when->str);
	at = conf_load_map_get(map, "escalate");
	if (at != NULL && (r->escalate_after_ms == 0) != (r->n_escalate_channels == 0))
		conf_load_value_error(ctx, at, "escalate needs both after and channels");
}

static const struct conf_key conf_alert_filter_keys[] = {
	{ .name = "sender_domain", CONF_DOMAINS,
	  .off = offsetof(struct conf_alert_rule, sender_domains),
	  .off2 = offsetof(struct conf_alert_rule, n_sender_domains) },
	{ .name = "recipient_domain", CONF_DOMAINS,
	  .off = offsetof(struct conf_alert_rule, recipient_domains),
	  .off2 = offsetof(struct conf_alert_rule, n_recipient_domains) },
	{ .name = "route", .set = conf_set_strs, .off = offsetof(struct conf_alert_rule, routes),
	  .off2 = offsetof(struct conf_alert_rule, n_routes) },
	{ .name = "hours", .set = conf_set_hours,
	  .off = offsetof(struct conf_alert_rule, hours_from) },
};

static const struct conf_table conf_alert_filter_table = { CONF_KEYS(conf_alert_filter_keys) };

static const struct conf_key conf_alert_escalate_keys[] = {
	{ .name = "after", CONF_DURATION(1000, 30 * CONF_DAY_MS),
	  .off = offsetof(struct conf_alert_rule, escalate_after_ms) },
	{ .name = "channels", .set = conf_set_strs,
	  .off = offsetof(struct conf_alert_rule, escalate_channels),
	  .off2 = offsetof(struct conf_alert_rule, n_escalate_channels) },
};

static const struct conf_table conf_alert_escalate_table = {
	CONF_KEYS(conf_alert_escalate_keys),
};

static const struct conf_key conf_alert_rule_keys[] = {
	{ .name = "name", .set = conf_set_str, .off = offsetof(struct conf_alert_rule, name),
	  .required = true, .check = conf_is_label,
	  .check_what = "a name (letters, digits, \"_\", \"-\", \".\"; up to 64)" },
	{ .name = "when", .set = conf_set_enum, .off = offsetof(struct conf_alert_rule, when),
	  .required = true, .enums = conf_alert_when_enum },
	{ .name = "threshold", .set = conf_set_later, .off = 0,
	  .check_what = "a number, a percentage or a duration" },
	{ .name = "window", CONF_DURATION(1000, 7 * CONF_DAY_MS),
	  .off = offsetof(struct conf_alert_rule, window_ms) },
	{ .name = "cooldown", CONF_DURATION(0, 7 * CONF_DAY_MS),
	  .off = offsetof(struct conf_alert_rule, cooldown_ms), .dflt = "15m" },
	{ .name = "min_samples", .set = conf_set_uint,
	  .off = offsetof(struct conf_alert_rule, min_samples), .dflt = "20", .min = 1,
	  .max = 1000000 },
	{ .name = "group_by", .set = conf_set_enum, .off = offsetof(struct conf_alert_rule, group_by),
	  .enums = conf_alert_group_enum },
	{ .name = "channels", .set = conf_set_strs, .off = offsetof(struct conf_alert_rule, channels),
	  .off2 = offsetof(struct conf_alert_rule, n_channels) },
	{ .name = "escalate", .set = conf_set_map, .off = 0, .sub = &conf_alert_escalate_table },
	{ .name = "recovery", .set = conf_set_bool, .off = offsetof(struct conf_alert_rule, recovery),
	  .dflt = "true" },
	{ .name = "filters", .set = conf_set_map, .off = 0, .sub = &conf_alert_filter_table },
};

static const struct conf_table conf_alert_rule_table = {
	CONF_KEYS(conf_alert_rule_keys), .size = sizeof(struct conf_alert_rule),
	.finish = conf_alert_rule_finish,
};

/* A rule's channel names must name alerts.channels; route filters must name routes. */
static void
conf_alert_names_check(struct conf_ctx *ctx, const struct ynode *seq, const char *key,
    char *const *names, size_t n, const struct conf *c, bool routes)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		bool found = false;

		for (j = 0; !routes && j < c->n_alert_channels; j++)
			found = found || strcmp(names[i], c->alert_channels[j].name) == 0;
		for (j = 0; routes && j < c->n_routes; j++)
			found = found || (c->routes[j].name != NULL &&
			    strcmp(names[i], c->routes[j].name) == 0);
		if (!found)
			conf_load_error(ctx, conf_load_seq_item(seq, i), "%s[%zu]: %s is not %s", key,
			    i, log_q(names[i]), routes ? "a route name (routes[].name)" :
			    "a channel name (alerts.channels[].name)");
	}
}

static void
conf_alert_rules_check(struct conf_ctx *ctx, struct conf *c, const struct ynode *alerts)
{
	const struct ynode *seq = conf_load_map_get(alerts, "rules");
	const char **names = xcalloc(c->n_alert_rules + 1, sizeof(*names));
	size_t i;

	for (i = 0; i < c->n_alert_rules; i++) {
		const struct conf_alert_rule *r = &c->alert_rules[i];
		const struct ynode *item = conf_load_seq_item(seq, i);
		const struct ynode *esc = conf_load_map_get(item, "escalate");
		const struct ynode *flt = conf_load_map_get(item, "filters");
		char key[96];

		names[i] = r->name;
		snprintf(key, sizeof(key), "alerts.rules[%zu].channels", i);
		conf_alert_names_check(ctx, conf_load_map_get(item, "channels"), key, r->channels,
		    r->n_channels, c, false);
		snprintf(key, sizeof(key), "alerts.rules[%zu].escalate.channels", i);
		conf_alert_names_check(ctx, conf_load_map_get(esc, "channels"), key,
		    r->escalate_channels, r->n_escalate_channels, c, false);
		snprintf(key, sizeof(key), "alerts.rules[%zu].filters.route", i);
		conf_alert_names_check(ctx, conf_load_map_get(flt, "route"), key, r->routes,
		    r->n_routes, c, true);
	}
	conf_check_unique(ctx, "alerts.rules", names, c->n_alert_rules, seq, "name", NULL);
	free(names);
}

static void
conf_alerts_finish(struct conf_ctx *ctx, void *obj, const struct ynode *map)
{
	conf_alert_channels_check(ctx, obj, map);
	conf_alert_rules_check(ctx, obj, map);
}

static const struct conf_key conf_alerts_keys[] = {
	{ .name = "channels", .set = conf_set_list, .off = offsetof(struct conf, alert_channels),
	  .off2 = offsetof(struct conf, n_alert_channels), .sub = &conf_alert_channel_table },
	{ .name = "rules", .set = conf_set_list, .off = offsetof(struct conf, alert_rules),
	  .off2 = offsetof(struct conf, n_alert_rules), .sub = &conf_alert_rule_table },
	{ .name = "time_scale", .set = conf_set_uint, .off = offsetof(struct conf, alert_time_scale),
	  .dflt = "1", .min = 1, .max = 100000 },
};

static const struct conf_table conf_alerts_table = {
	CONF_KEYS(conf_alerts_keys), .finish = conf_alerts_finish,
};

static const struct conf_key conf_top_keys[] = {
	{ .name = "node", .set = conf_set_str, .off = offsetof(struct conf, node),
	  .check = conf_is_label,
	  .check_what = "a node name (letters, digits, \"_\", \"-\", \".\"; up to 64)" },
	{ .name = "node_id", .set = conf_set_uint, .off = offsetof(struct conf, node_id),
	  .max = 255 },
	{ .name = "hostname", .set = conf_set_str, .off = offsetof(struct conf, hostname),
	  .check = conf_net_is_hostname, .check_what = "a host name" },
	{ .name = "spool", .set = conf_set_path, .off = offsetof(struct conf, spool),
	  .dflt = "/var/spool/hikyaku" },
	{ .name = "state", .set = conf_set_path, .off = offsetof(struct conf, state),
	  .dflt = "/var/lib/hikyaku" },
	{ .name = "user", .set = conf_set_str, .off = offsetof(struct conf, user),
	  .dflt = "hikyaku",
	  .check = conf_is_label, .check_what = "a system user name" },
	{ .name = "listen", .set = conf_set_list, .off = offsetof(struct conf, listeners),
	  .off2 = offsetof(struct conf, n_listeners), .sub = &conf_listener_table,
	  .required = true },
	{ .name = "tls", .set = conf_set_map, .off = 0, .sub = &conf_tls_table },
	{ .name = "networks", .set = conf_set_cidrs, .off = offsetof(struct conf, networks),
	  .off2 = offsetof(struct conf, n_networks), .dflt = "[127.0.0.0/8, \"::1/128\"]" },
	{ .name = "users", .set = conf_set_list, .off = offsetof(struct conf, users),
	  .off2 = offsetof(struct conf, n_users), .sub = &conf_user_table },
	{ .name = "limits", .set = conf_set_map, .off = offsetof(struct conf, limits),
	  .sub = &conf_limits_table },
	{ .name = "upstreams", .set = conf_set_list, .off = offsetof(struct conf, upstreams),
	  .off2 = offsetof(struct conf, n_upstreams), .sub = &conf_upstream_table,
	  .required = true },
	{ .name = "routes", .set = conf_set_list, .off = offsetof(struct conf, routes),
	  .off2 = offsetof(struct conf, n_routes), .sub = &conf_route_table, .required = true },
	{ .name = "retry", .set = conf_set_map, .off = 0, .sub = &conf_retry_table },
	{ .name = "api", .set = conf_set_map, .off = 0, .sub = &conf_api_table },
	{ .name = "sendmail", .set = conf_set_map, .off = 0, .sub = &conf_sendmail_table },
	{ .name = "log", .set = conf_set_map, .off = 0, .sub = &conf_log_table },
	{ .name = "delivery", .set = conf_set_map, .off = 0, .sub = &conf_delivery_table },
	{ .name = "dns", .set = conf_set_map, .off = 0, .sub = &conf_dns_table },
	{ .name = "checks", .set = conf_set_map, .off = 0, .sub = &conf_checks_table },
	{ .name = "alerts", .set = conf_set_map, .off = 0, .sub = &conf_alerts_table },
	{ .name = "explain", .set = conf_set_path, .off = offsetof(struct conf, explain_path),
	  .readable = true },
	{ .name = "spool_workers", .set = conf_set_uint,
	  .off = offsetof(struct conf, spool_workers),
	  .dflt = "0", .min = 0, .max = 256 },
};

static const struct conf_table conf_top_table = {
	CONF_KEYS(conf_top_keys), .finish = conf_finish,
};

void
conf_schema_apply(struct conf_ctx *ctx, const struct ynode *root)
{
	conf_map_apply(ctx, &conf_top_table, ctx->conf, root, root);
}
