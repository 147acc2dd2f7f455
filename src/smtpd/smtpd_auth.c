/*
 * smtpd_auth.c - AUTH PLAIN and LOGIN (RFC 4954, RFC 4616) against crypt(3) hashes of conf users.
 *
 * Every attempt starts from fresh state. Unknown user and wrong password get the same reply
 * (535 5.7.8) after the same work: an unknown user is checked against a dummy setting of the
 * same algorithm. Failures are counted per client IP and per user name in one-minute windows
 * (limits.auth_failures_per_min): over either limit, AUTH gets 454 4.7.0 before any check (even
 * with the right password, so guessing gains nothing). Throttled attempts count as failures of
 * the IP too; at twice the limit the client gets 421 4.7.0 and the connection is closed. The hash runs on auth_pool when there is one, so the loop never
 * waits for it; the session is suspended meanwhile.
 * Credentials are never logged: the transcript shows "***" and auth_failed names only the user.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "../util/base64.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/str.h"
#include "../util/xalloc.h"
#include "smtpd_int.h"
#include "../util/poison.h"

#define SMTPD_AUTH_PLAIN 1
#define SMTPD_AUTH_LOGIN 2
#define SMTPD_THROTTLE_WINDOW_MS 60000u

struct smtpd_auth_job {
	LIST_ENTRY(smtpd_auth_job) link;
	struct smtpd *sd;        /* NULL once smtpd is freed */
	struct smtpd_session *s; /* NULL once the session is gone */
	unsigned long sess_id;
	char *user;
	char *pass;
	char *hash;
	bool known;
	bool ok;
	struct crypt_data cd;
};

/* ---- throttle ---- */

static struct smtpd_throttle_slot *
smtpd_throttle_find(struct smtpd *sd, const char *key, bool create)
{
	struct smtpd_throttle_slot *oldest = NULL, *t;
	size_t i;

	for (i = 0; i < SMTPD_THROTTLE_SLOTS; i++) {
		t = &sd->throttle[i];
		if (strcmp(t->key, key) == 0)
			return t;
		if (oldest == NULL || t->key[0] == '\0' ||
		    (oldest->key[0] != '\0' && t->window_start_ms < oldest->window_start_ms))
			oldest = t;
	}
	if (!create)
		return NULL;
	/* Full: reuse the stalest entry; flooding the table only forgets old windows. */
	if (str_copy(oldest->key, sizeof(oldest->key), key) == -1)
		return NULL;
	oldest->window_start_ms = clock_mono_ms();
	oldest->count = 0;
	return oldest;
}

unsigned
smtpd_throttle_count(struct smtpd *sd, const char *key)
{
	struct smtpd_throttle_slot *t = smtpd_throttle_find(sd, key, false);

	if (t == NULL || clock_mono_ms() - t->window_start_ms >= SMTPD_THROTTLE_WINDOW_MS)
		return 0;
	return t->count;
}

bool
smtpd_throttle_is_over(struct smtpd *sd, const char *key, unsigned limit)
{
	return limit > 0 && smtpd_throttle_count(sd, key) >= limit;
}

void
smtpd_throttle_fail(struct smtpd *sd, const char *key)
{
	struct smtpd_throttle_slot *t = smtpd_throttle_find(sd, key, true);
	uint64_t now = clock_mono_ms();

	if (t == NULL)
		return;
	if (now - t->window_start_ms >= SMTPD_THROTTLE_WINDOW_MS) {
		t->window_start_ms = now;
		t->count = 0;
	}
	t->count++;
}

static void
smtpd_throttle_key(char *out, size_t size, char kind, const char *name)
{
	out[0] = kind;
	out[1] = ':';
	if (str_copy(out + 2, size - 2, name) == -1)
		out[2] = '\0';
}

/* ---- set-up ---- */

int
smtpd_auth_init(struct smtpd *sd, struct hk_err *err)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	sd->throttle = xcalloc(SMTPD_THROTTLE_SLOTS, sizeof(*sd->throttle));
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL &&
	    crypt_gensalt_rn("$6$", 0, NULL, 0, setting, sizeof(setting)) == NULL)
		return hk_err_set(err, HK_E_CONFIG, "crypt_gensalt: no usable hash method");
	sd->dummy_hash = xstrdup(setting);
	return 0;
}

void
smtpd_auth_fini(struct smtpd *sd)
{
	free(sd->throttle);
	sd->throttle = NULL;
	free(sd->dummy_hash);
	sd->dummy_hash = NULL;
}

/* ---- the exchange ---- */

bool
smtpd_auth_is_offered(const struct smtpd_session *s)
{
	return s->lst->auth != CONF_AUTH_NONE && s->esmtp &&
	    (s->in_tls || s->lst->allow_insecure_auth);
}

bool
smtpd_auth_check(const struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a,
    struct smtpd_reply *r)
{
	const char *why;

	if (s->lst->auth == CONF_AUTH_NONE) {
		*r = (struct smtpd_reply){ 503, "5.5.1", "Authentication not enabled" };
		return false;
	}
	if (!s->in_tls && !s->lst->allow_insecure_auth) {
		*r = (struct smtpd_reply){ 538, "5.7.11", "Encryption required for requested "
		    "authentication mechanism" };
		return false;
	}
	if (!s->esmtp) {
		*r = (struct smtpd_reply){ 503, "5.5.1", "Send EHLO first" };
		return false;
	}
	if (s->auth_user != NULL) {
		*r = (struct smtpd_reply){ 503, "5.5.1", "Already authenticated" };
		return false;
	}
	if (cmd->arg == NULL || smtp_cmd_parse_auth(cmd->arg, cmd->arg_len, a->auth.mech,
	    &a->auth.ir, &a->auth.ir_len, &why) != SMTP_CMD_OK) {
		*r = (struct smtpd_reply){ 501, "5.5.4",
		    "Syntax: AUTH mechanism [initial-response]" };
		return false;
	}
	if (strcmp(a->auth.mech, "PLAIN") != 0 && strcmp(a->auth.mech, "LOGIN") != 0) {
		*r = (struct smtpd_reply){ 504, "5.5.4", "Unrecognized authentication type" };
		return false;
	}
	return true;
}

static void
smtpd_auth_end(struct smtpd_session *s)
{
	if (s->auth_user_buf.ptr != NULL)
		explicit_bzero(s->auth_user_buf.ptr, s->auth_user_buf.cap);
	buf_reset(&s->auth_user_buf);
	s->auth_mech = 0;
	s->auth_step = 0;
	if (s->state == SMTPD_STATE_AUTH || s->state == SMTPD_STATE_AUTH_CHECK)
		smtpd_enter_state(s, SMTPD_STATE_HELO);
}

static void
smtpd_auth_job_free(struct smtpd_auth_job *j)
{
	if (j->pass != NULL) {
		explicit_bzero(j->pass, strlen(j->pass));
		free(j->pass);
	}
	explicit_bzero(&j->cd, sizeof(j->cd));
	free(j->user);
	free(j->hash);
	free(j);
}

void
smtpd_auth_job_detach(struct smtpd_auth_job *j)
{
	j->s = NULL;
}

void
smtpd_auth_jobs_orphan(struct smtpd *sd)
{
	struct smtpd_auth_job *j;

	while ((j = LIST_FIRST(&sd->auth_jobs)) != NULL) {
		LIST_REMOVE(j, link);
		j->sd = NULL;
	}
}

/* On a worker (or inline): the only slow part. */
static void
smtpd_auth_work(void *arg)
{
	struct smtpd_auth_job *j = arg;
	const char *out;

	memset(&j->cd, 0, sizeof(j->cd));
	out = crypt_rn(j->pass, j->hash, &j->cd, (int)sizeof(j->cd));
	j->ok = j->known && out != NULL &&
	    str_eq_consttime(out, strlen(out), j->hash, strlen(j->hash));
}

static void
smtpd_auth_done(void *arg)
{
	struct smtpd_auth_job *j = arg;
	struct smtpd_session *s = j->s;
	char key[SMTP_PATH_MAX + 3];

	if (j->sd != NULL)
		LIST_REMOVE(j, link);
	if (s == NULL) {
		log_debug("smtpd", "auth_orphaned", "sess=%lu user=%s", j->sess_id, log_q(j->user));
		smtpd_auth_job_free(j);
		return;
	}
	s->auth_job = NULL;
	if (j->ok) {
		s->auth_user = xstrdup(j->user);
		log_info("smtpd", "auth", "sess=%lu client=%s user=%s", s->id, s->ip,
		    log_q(j->user));
		smtpd_reply(s, 235, "2.7.0", "Authentication successful");
	} else {
		smtpd_throttle_key(key, sizeof(key), 'i', s->ip);
		smtpd_throttle_fail(s->sd, key);
		smtpd_throttle_key(key, sizeof(key), 'u', j->user);
		smtpd_throttle_fail(s->sd, key);
		log_info("smtpd", "auth_failed", "sess=%lu client=%s user=%s why=credentials",
		    s->id, s->ip, log_q(j->user));
		if (s->sd->on_auth_failure != NULL)
			s->sd->on_auth_failure(s->sd->on_auth_failure_arg, s->ip, j->user,
			    "credentials");
		smtpd_auth_end(s);
		smtpd_reply_error(s, 535, "5.7.8", "Authentication credentials invalid");
	}
	if (j->ok)
		smtpd_auth_end(s);
	smtpd_auth_job_free(j);
	smtpd_session_resume(s);
}

static void
smtpd_auth_verify(struct smtpd_session *s, const char *user, const char *pass, size_t pass_len)
{
	const struct conf_user *u;
	struct smtpd_auth_job *j;
	char key[SMTP_PATH_MAX + 3];

	smtpd_throttle_key(key, sizeof(key), 'u', user);
	if (smtpd_throttle_is_over(s->sd, key, s->conf->limits.auth_failures_per_min)) {
		log_info("smtpd", "auth_failed", "sess=%lu client=%s user=%s why=throttled", s->id,
		    s->ip, log_q(user));
		if (s->sd->on_auth_failure != NULL)
			s->sd->on_auth_failure(s->sd->on_auth_failure_arg, s->ip, user, "throttled");
		smtpd_auth_end(s);
		smtpd_reply(s, 454, "4.7.0", "Temporary authentication failure, try again later");
		return;
	}
	u = conf_user_find(s->conf, user);
	j = xcalloc(1, sizeof(*j));
	j->sd = s->sd;
	j->s = s;
	j->sess_id = s->id;
	j->user = xstrdup(user);
	j->pass = xstrndup(pass, pass_len);
	j->known = u != NULL && u->password_hash != NULL;
	j->hash = xstrdup(j->known ? u->password_hash : s->sd->dummy_hash);
	s->auth_job = j;
	LIST_INSERT_HEAD(&s->sd->auth_jobs, j, link);
	smtpd_enter_state(s, SMTPD_STATE_AUTH_CHECK);
	if (s->sd->auth_pool != NULL) {
		jobs_pool_submit(s->sd->auth_pool, smtpd_auth_work, smtpd_auth_done, j);
		return;
	}
	smtpd_auth_work(j);
	smtpd_auth_done(j);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd; we act only as authcid. */
static void
smtpd_auth_plain(struct smtpd_session *s, const char *p, size_t n)
{
	const char *nul1, *nul2;
	size_t zlen, clen;

	nul1 = memchr(p, '\0', n);
	nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - p)) : NULL;
	if (nul2 == NULL || memchr(nul2 + 1, '\0', n - (size_t)(nul2 + 1 - p)) != NULL) {
		smtpd_auth_end(s);
		smtpd_reply_error(s, 501, "5.5.2", "Malformed PLAIN response");
		return;
	}
	zlen = (size_t)(nul1 - p);
	clen = (size_t)(nul2 - nul1 - 1);
	if (clen == 0 || clen >= SMTP_PATH_MAX ||
	    (zlen != 0 && (zlen != clen || memcmp(p, nul1 + 1, clen) != 0))) {
		smtpd_auth_end(s);
		smtpd_reply_error(s, 535, "5.7.8", "Authentication credentials invalid");
		return;
	}
	smtpd_auth_verify(s, nul1 + 1, nul2 + 1, n - (size_t)(nul2 + 1 - p));
}

/* One client response (initial or after 334), already base64-decoded into d. */
static void
smtpd_auth_response(struct smtpd_session *s, struct buf *d)
{
	if (s->auth_mech == SMTPD_AUTH_PLAIN) {
		smtpd_auth_plain(s, d->ptr != NULL ? d->ptr : "", d->len);
		return;
	}
	if (s->auth_step == 0) {
		if (d->len == 0 || d->len >= SMTP_PATH_MAX ||
		    memchr(d->ptr, '\0', d->len) != NULL) {
			smtpd_auth_end(s);
			smtpd_reply_error(s, 535, "5.7.8", "Authentication credentials invalid");
			return;
		}
		buf_reset(&s->auth_user_buf);
		buf_append(&s->auth_user_buf, d->ptr, d->len);
		s->auth_step = 1;
		smtpd_enter_state(s, SMTPD_STATE_AUTH);
		smtpd_reply(s, 334, NULL, "UGFzc3dvcmQ6"); /* "Password:" */
		return;
	}
	if (d->len > 0 && memchr(d->ptr, '\0', d->len) != NULL) {
		smtpd_auth_end(s);
		smtpd_reply_error(s, 535, "5.7.8", "Authentication credentials invalid");
		return;
	}
	smtpd_auth_verify(s, s->auth_user_buf.ptr, d->ptr != NULL ? d->ptr : "", d->len);
}

static void
smtpd_auth_decode_and_go(struct smtpd_session *s, const char *p, size_t n)
{
	struct buf d = BUF_INIT;

	/* RFC 4954 4: "=" is an empty initial response. */
	if (!(n == 1 && p[0] == '=') && base64_decode(&d, p, n) == -1) {
		smtpd_auth_end(s);
		smtpd_reply_error(s, 501, "5.5.2", "Cannot decode response");
		buf_fini(&d);
		return;
	}
	smtpd_auth_response(s, &d);
	if (d.ptr != NULL)
		explicit_bzero(d.ptr, d.cap);
	buf_fini(&d);
}

void
smtpd_auth_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd, union smtpd_args *a)
{
	char key[SMTP_PATH_MAX + 3];
	unsigned limit;

	smtpd_throttle_key(key, sizeof(key), 'i', s->ip);
	limit = s->conf->limits.auth_failures_per_min;
	if (smtpd_throttle_is_over(s->sd, key, limit)) {
		smtpd_throttle_fail(s->sd, key);
		log_info("smtpd", "auth_failed", "sess=%lu client=%s why=throttled_ip", s->id,
		    s->ip);
		if (s->sd->on_auth_failure != NULL)
			s->sd->on_auth_failure(s->sd->on_auth_failure_arg, s->ip, NULL,
			    "throttled_ip");
		if (smtpd_throttle_count(s->sd, key) >= 2 * limit) {
			smtpd_reply(s, 421, "4.7.0",
			    "Too many authentication failures, closing connection");
			smtpd_session_close(s);
			return;
		}
		smtpd_reply_error(s, 454, "4.7.0",
		    "Too many authentication failures, try again later");
		return;
	}
	/* Fresh state for every attempt. */
	buf_reset(&s->auth_user_buf);
	s->auth_step = 0;
	s->auth_mech = strcmp(a->auth.mech, "PLAIN") == 0 ? SMTPD_AUTH_PLAIN : SMTPD_AUTH_LOGIN;
	if (a->auth.ir != NULL) {
		smtpd_auth_decode_and_go(s, a->auth.ir, a->auth.ir_len);
		return;
	}
	smtpd_enter_state(s, SMTPD_STATE_AUTH);
	if (s->auth_mech == SMTPD_AUTH_PLAIN)
		smtpd_reply(s, 334, NULL, "%s", "");
	else
		smtpd_reply(s, 334, NULL, "VXNlcm5hbWU6"); /* "Username:" */
}

void
smtpd_auth_line(struct smtpd_session *s, const char *line, size_t len)
{
	log_trace(TRACE_SMTPD, "smtpd", "recv", "sess=%lu line=***", s->id);
	s->ncommands++;
	if (len == 1 && line[0] == '*') {
		smtpd_auth_end(s);
		smtpd_reply(s, 501, "5.7.0", "Authentication cancelled");
		return;
	}
	smtpd_auth_decode_and_go(s, line, len);
}
