/*
 * test_cli_sendmail_smtp.c - the sendmail command's SMTP client of the sendmail socket:
 * dot-stuffing, exit codes, and whole submissions against a scripted server on a socketpair
 * (a child process writes the replies, then sends back every byte the client wrote).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli_sendmail_smtp.h"
#include "proto/smtp_cmd.h"
#include "util/buf.h"
#include "util/xalloc.h"
#include "util/poison.h"

static void
test_stuff_doubles_leading_dots(void **state)
{
	struct buf out = BUF_INIT;
	static const char in[] = ".a\r\nb\r\n.\r\n..c\r\n";

	(void)state;
	sendmail_smtp_stuff(in, sizeof(in) - 1, &out);
	assert_string_equal(out.ptr, "..a\r\nb\r\n..\r\n...c\r\n.\r\n");
	buf_reset(&out);
	/* A text without a last line break gets one before the dot. */
	sendmail_smtp_stuff("x\r\n.y", 5, &out);
	assert_string_equal(out.ptr, "x\r\n..y\r\n.\r\n");
	buf_reset(&out);
	sendmail_smtp_stuff("", 0, &out);
	assert_string_equal(out.ptr, ".\r\n");
	buf_fini(&out);
}

static void
test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(sendmail_smtp_exit_code(452, "RCPT"), EX_TEMPFAIL);
	assert_int_equal(sendmail_smtp_exit_code(451, "DATA"), EX_TEMPFAIL);
	assert_int_equal(sendmail_smtp_exit_code(550, "RCPT"), EX_NOUSER);
	assert_int_equal(sendmail_smtp_exit_code(552, "DATA"), EX_DATAERR);
	assert_int_equal(sendmail_smtp_exit_code(553, "MAIL"), EX_DATAERR);
	assert_int_equal(sendmail_smtp_exit_code(554, "EHLO"), EX_UNAVAILABLE);
}

struct run {
	enum sendmail_smtp_result res;
	int exit_code;
	struct buf qid;
	struct buf sent; /* what the client wrote */
};

/* Submit env/body against a server that answers replies[] (all at once) and records the rest. */
static void
run_submit(const char *replies, const struct spool_env *env, const char *body, struct run *r)
{
	int sv[2], pipefd[2], status;
	pid_t pid;
	char chunk[4096];
	ssize_t n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(sv[0]);
		close(pipefd[0]);
		const char *close_at = strstr(replies, "CLOSE");
		size_t len = close_at != NULL ? (size_t)(close_at - replies) : strlen(replies);

		if (write(sv[1], replies, len) != (ssize_t)len)
			_exit(1);
		/* "CLOSE": the server stops answering there, as a daemon going away. */
		if (close_at != NULL)
			shutdown(sv[1], SHUT_WR);
		while ((n = read(sv[1], chunk, sizeof(chunk))) > 0) {
			if (write(pipefd[1], chunk, (size_t)n) != n)
				_exit(1);
		}
		_exit(0);
	}
	close(sv[1]);
	close(pipefd[1]);
	buf_init(&r->qid);
	buf_init(&r->sent);
	r->res = sendmail_smtp_submit(sv[0], "host.example", env, body, strlen(body),
	    &r->exit_code, &r->qid);
	while ((n = read(pipefd[0], chunk, sizeof(chunk))) > 0)
		buf_append(&r->sent, chunk, (size_t)n);
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (r->qid.ptr == NULL)
		buf_append_str(&r->qid, "");
	if (r->sent.ptr == NULL)
		buf_append_str(&r->sent, "");
}

static void
run_fini(struct run *r)
{
	buf_fini(&r->qid);
	buf_fini(&r->sent);
}

static void
env_init(struct spool_env *env)
{
	memset(env, 0, sizeof(*env));
	env->from = xstrdup("app@example.com");
	spool_env_add_rcpt(env, "a@example.net", SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, NULL);
	spool_env_add_rcpt(env, "b@example.org", 0, NULL);
}

static void
test_submit_queued(void **state)
{
	struct spool_env env;
	struct run r;

	(void)state;
	env_init(&env);
	env.ret = SMTP_RET_HDRS;
	env.envid = xstrdup("id+1=x");
	run_submit("220 h ESMTP\r\n250-h\r\n250 DSN\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n354 go\r\n250 2.0.0 Ok: queued as 0123456789ABCDEF\r\n221 Bye\r\n",
	    &env, "Subject: t\r\n\r\n.dot\r\n\xc3\xa9\r\n", &r);
	assert_int_equal(r.res, SENDMAIL_SMTP_QUEUED);
	assert_string_equal(r.qid.ptr, "0123456789ABCDEF");
	assert_string_equal(r.sent.ptr,
	    "EHLO host.example\r\n"
	    "MAIL FROM:<app@example.com> SIZE=24 BODY=8BITMIME RET=HDRS ENVID=id+2B1+3Dx\r\n"
	    "RCPT TO:<a@example.net> NOTIFY=FAILURE,DELAY\r\n"
	    "RCPT TO:<b@example.org>\r\n"
	    "DATA\r\n"
	    "Subject: t\r\n\r\n..dot\r\n\xc3\xa9\r\n.\r\n"
	    "QUIT\r\n");
	run_fini(&r);
	spool_env_fini(&env);
}

static void
test_submit_recipient_refused(void **state)
{
	struct spool_env env;
	struct run r;

	(void)state;
	env_init(&env);
	run_submit("220 h\r\n250 h\r\n250 Ok\r\n250 Ok\r\n550 5.1.1 No such user\r\n221 Bye\r\n",
	    &env, "x\r\n", &r);
	assert_int_equal(r.res, SENDMAIL_SMTP_REFUSED);
	assert_int_equal(r.exit_code, EX_NOUSER);
	/* No DATA after a refusal: nothing is queued. */
	assert_null(strstr(r.sent.ptr, "DATA"));
	assert_non_null(strstr(r.sent.ptr, "RCPT TO:<b@example.org>\r\nQUIT\r\n"));
	run_fini(&r);
	spool_env_fini(&env);
}

static void
test_submit_temporary_refusal_after_data(void **state)
{
	struct spool_env env;
	struct run r;

	(void)state;
	env_init(&env);
	run_submit("220 h\r\n250 h\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"
	    "452 4.3.1 Insufficient system storage\r\n221 Bye\r\n", &env, "x\r\n", &r);
	assert_int_equal(r.res, SENDMAIL_SMTP_REFUSED);
	assert_int_equal(r.exit_code, EX_TEMPFAIL);
	run_fini(&r);
	spool_env_fini(&env);
}

/* 421, garbage, silence after the dot: nothing known to be queued -> the maildrop. */
static void
test_submit_unavailable(void **state)
{
	static const char *const scripts[] = {
		"421 4.3.2 Shutting down\r\nCLOSE",
		"hello there\r\nCLOSE",
		"220 h\r\n250 h\r\n421 4.3.2 Shutting down\r\nCLOSE",
		"220 h\r\n250 h\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\nCLOSE",
		"220 h\r\n250-h\r\n251 mixed codes\r\nCLOSE",
	};
	struct spool_env env;
	struct run r;
	size_t i;

	(void)state;
	env_init(&env);
	for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		run_submit(scripts[i], &env, "x\r\n", &r);
		assert_int_equal(r.res, SENDMAIL_SMTP_UNAVAILABLE);
		run_fini(&r);
	}
	spool_env_fini(&env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stuff_doubles_leading_dots),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_submit_queued),
		cmocka_unit_test(test_submit_recipient_refused),
		cmocka_unit_test(test_submit_temporary_refusal_after_data),
		cmocka_unit_test(test_submit_unavailable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
