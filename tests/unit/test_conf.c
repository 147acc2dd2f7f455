/*
 * test_conf.c - the configuration loader: defaults, every key, the diagnostics of bad input
 * (golden files tests/data/conf/<case>.yaml + <case>.ref), file checks, addresses and networks.
 *
 * Golden runner: each <case>.yaml is loaded with conf_load_string(name "<case>.yaml", no file
 * checks); the .ref holds either the exact diagnostics or, for a valid file, a dump of every
 * field. HK_GOLDEN_UPDATE=1 rewrites the .ref files.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "util/buf.h"
#include "util/fsops.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/poison.h"

/* ---- helpers ---- */

static int
load(const char *yaml, bool check_files, struct conf **c, struct conf_diag *d)
{
	return conf_load_string("t.yaml", yaml, strlen(yaml), check_files, c, d);
}

/* Load yaml, expect failure and return the diagnostics (caller frees). */
static char *
diags_of(const char *yaml, bool check_files, unsigned *count)
{
	struct conf_diag d;
	struct conf *c = NULL;
	char *out;

	conf_diag_init(&d);
	assert_int_equal(load(yaml, check_files, &c, &d), -1);
	assert_null(c);
	if (count != NULL)
		*count = d.count;
	out = buf_steal(&d.text);
	conf_diag_fini(&d);
	return out;
}

static struct conf *
load_ok(const char *yaml)
{
	struct conf_diag d;
	struct conf *c = NULL;

	conf_diag_init(&d);
	if (load(yaml, false, &c, &d) != 0)
		fail_msg("unexpected diagnostics:\n%s", d.text.ptr);
	assert_int_equal(d.count, 0);
	conf_diag_fini(&d);
	assert_non_null(c);
	return c;
}

static const char *
tls_name(enum conf_tls t)
{
	static const char *const names[] = { "none", "starttls", "implicit" };

	return names[t];
}

static const char *
auth_name(enum conf_auth a)
{
	static const char *const names[] = { "none", "optional", "required" };

	return names[a];
}

static void
dump_strv(struct buf *b, const char *what, char **v, size_t n)
{
	size_t i;

	buf_printf(b, " %s=[", what);
	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s", i ? "," : "", v[i]);
	buf_putc(b, ']');
}

static void
dump_cidr(struct buf *b, const struct conf_cidr *c)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, text, sizeof(text));
	buf_printf(b, "%s/%u", text, c->prefix);
}

#define S(x) ((x) != NULL ? (x) : "(null)")

/* Every field, one line per object, in a stable format. node/hostname are printed as given. */
static void
conf_dump(const struct conf *c, struct buf *b)
{
	size_t i, j;

	buf_printf(b, "node=%s node_id=%u hostname=%s user=%s\n", S(c->node), c->node_id,
	    S(c->hostname), S(c->user));
	buf_printf(b, "spool=%s state=%s spool_workers=%u\n", S(c->spool), S(c->state),
	    c->spool_workers);
	for (i = 0; i < c->n_listeners; i++) {
		const struct conf_listener *l = &c->listeners[i];

		buf_printf(b,
		    "listen[%zu] address=%s family=%d len=%u name=%s tls=%s auth=%s relay=%u "
		    "allow_insecure_auth=%d implicit_submission=%d\n",
		    i, l->addr.text, l->addr.ss.ss_family, (unsigned)l->addr.len, S(l->name),
		    tls_name(l->tls), auth_name(l->auth), l->relay, l->allow_insecure_auth,
		    l->implicit_submission);
	}
	buf_printf(b, "tls cert=%s key=%s\n", S(c->tls_cert), S(c->tls_key));
	buf_printf(b, "networks=");
	for (i = 0; i < c->n_networks; i++) {
		if (i > 0)
			buf_putc(b, ',');
		dump_cidr(b, &c->networks[i]);
	}
	buf_putc(b, '\n');
	for (i = 0; i < c->n_users; i++)
		buf_printf(b, "users[%zu] name=%s password_hash=%s\n", i, c->users[i].name,
		    c->users[i].password_hash);
	buf_printf(b,
	    "limits max_message_size=%llu max_recipients=%u max_line=%u max_connections=%u "
	    "max_connections_per_ip=%u max_errors=%u command_timeout_ms=%llu data_timeout_ms=%llu "
	    "auth_failures_per_min=%u\n",
	    (unsigned long long)c->limits.max_message_size, c->limits.max_recipients,
	    c->limits.max_line, c->limits.max_connections, c->limits.max_connections_per_ip,
	    c->limits.max_errors, (unsigned long long)c->limits.command_timeout_ms,
	    (unsigned long long)c->limits.data_timeout_ms, c->limits.auth_failures_per_min);
	for (i = 0; i < c->n_upstreams; i++) {
		const struct conf_upstream *u = &c->upstreams[i];

		buf_printf(b,
		    "upstreams[%zu] name=%s host=%s port=%u tls=%s verify=%d ca_file=%s "
		    "username=%s password_file=%s helo=%s\n",
		    i, u->name, u->host, u->port, tls_name(u->tls), u->verify, S(u->ca_file),
		    S(u->username), S(u->password_file), S(u->helo));
		buf_printf(b,
		    "upstreams[%zu].limits per_day=%llu per_hour=%llu rate=%llu/%llums "
		    "connections=%u recipients_per_message=%u max_size=%llu\n",
		    i, (unsigned long long)u->limits.per_day,
		    (unsigned long long)u->limits.per_hour,
		    (unsigned long long)u->limits.rate_count,
		    (unsigned long long)u->limits.rate_period_ms, u->limits.connections,
		    u->limits.recipients_per_message, (unsigned long long)u->limits.max_size);
	}
	for (i = 0; i < c->n_routes; i++) {
		const struct conf_route *r = &c->routes[i];

		buf_printf(b, "routes[%zu] name=%s mx=%d", i, r->name, r->mx);
		dump_strv(b, "sender_domain", r->sender_domains, r->n_sender_domains);
		dump_strv(b, "recipient_domain", r->recipient_domains, r->n_recipient_domains);
		dump_strv(b, "listener", r->listeners, r->n_listeners);
		dump_strv(b, "user", r->users, r->n_users);
		buf_printf(b, " upstreams=[");
		for (j = 0; j < r->n_upstreams; j++)
			buf_printf(b, "%s%zu:%s", j ? "," : "", r->upstreams[j],
			    c->upstreams[r->upstreams[j]].name);
		buf_printf(b, "]\n");
	}
	buf_printf(b, "retry schedule_ms=");
	for (i = 0; i < c->n_retry; i++)
		buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)c->retry_schedule_ms[i]);
	buf_printf(b, " max_age_ms=%llu\n", (unsigned long long)c->retry_max_age_ms);
	buf_printf(b, "api listen=%s family=%d token_file=%s control_socket=%s\n",
	    c->api_listen.text, c->api_listen.ss.ss_family, S(c->api_token_file),
	    S(c->api_control_socket));
	buf_printf(b, "log level=%s trace=%u retention_ms=%llu keep_bodies=%d\n", S(c->log_level),
	    c->log_trace, (unsigned long long)c->log_retention_ms, c->log_keep_bodies);
}

static char *
read_text(const char *path)
{
	struct buf b = BUF_INIT;
	int fd = open(path, O_RDONLY);

	if (fd == -1)
		return NULL;
	if (fsops_read_all(fd, &b, 1 << 20) == -1) {
		close(fd);
		buf_fini(&b);
		return NULL;
	}
	close(fd);
	/* fsops_read_all() of an empty file leaves an unterminated buffer: terminate it here. */
	buf_putc(&b, '\0');
	return buf_steal(&b);
}

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- golden files ---- */

static void
test_golden(void **state)
{
	const char *data = getenv("HK_DATA_DIR");
	bool update = getenv("HK_GOLDEN_UPDATE") != NULL;
	char **names = NULL;
	size_t n = 0, i, failed = 0;
	struct dirent *de;
	char dir[1024];
	DIR *d;

	(void)state;
	assert_non_null(data);
	snprintf(dir, sizeof(dir), "%s/conf", data);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) {
			names = xreallocarray(names, n + 1, sizeof(*names));
			names[n++] = xstrndup(de->d_name, len - 5);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	assert_true(n >= 40);
	for (i = 0; i < n; i++) {
		char path[1200], ref_path[1200], label[300];
		struct conf_diag diag;
		struct conf *c = NULL;
		struct buf got = BUF_INIT;
		char *text, *ref;
		int rc;

		snprintf(path, sizeof(path), "%s/%s.yaml", dir, names[i]);
		snprintf(ref_path, sizeof(ref_path), "%s/%s.ref", dir, names[i]);
		snprintf(label, sizeof(label), "%s.yaml", names[i]);
		text = read_text(path);
		assert_non_null(text);
		conf_diag_init(&diag);
		rc = conf_load_string(label, text, strlen(text), false, &c, &diag);
		if (rc == 0) {
			assert_int_equal(diag.count, 0);
			conf_dump(c, &got);
			conf_unref(c);
		} else {
			assert_null(c);
			assert_true(diag.count > 0);
			buf_append_str(&got, diag.text.ptr);
		}
		/* Cases named ok_* must load; every other case must fail. */
		if ((strncmp(names[i], "ok_", 3) == 0) != (rc == 0)) {
			print_error("%s: load returned %d\n%s", label, rc, got.ptr);
			failed++;
		}
		if (update) {
			write_text(ref_path, got.ptr);
		} else {
			ref = read_text(ref_path);
			if (ref == NULL || strcmp(ref, got.ptr) != 0) {
				print_error("%s: differs from %s.ref:\n--- got\n%s--- want\n%s",
				    label, names[i], got.ptr, ref ? ref : "(missing)\n");
				failed++;
			}
			free(ref);
		}
		conf_diag_fini(&diag);
		buf_fini(&got);
		free(text);
		free(names[i]);
	}
	free(names);
	assert_int_equal(failed, 0);
}

/* ---- defaults, every key ---- */

static const char ten_lines[] =
	"listen:\n"
	"  - address: 127.0.0.1:2525\n"
	"upstreams:\n"
	"  - name: primary\n"
	"    host: smtp.example.net\n"
	"routes:\n"
	"  - name: default\n"
	"    upstreams: [primary]\n"
	"  - name: mx\n"
	"    mx: true\n";

static void
test_defaults(void **state)
{
	struct conf *c;
	char host[256] = "";

	(void)state;
	c = load_ok(ten_lines);
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_string_equal(c->path, "t.yaml");
	assert_string_equal(c->hostname, host);
	assert_int_equal(strncmp(c->node, host, strlen(c->node)), 0);
	assert_true(c->node_id <= 255);
	assert_string_equal(c->spool, "/var/spool/hikyaku");
	assert_string_equal(c->state, "/var/lib/hikyaku");
	assert_string_equal(c->user, "hikyaku");
	assert_int_equal(c->n_listeners, 1);
	assert_string_equal(c->listeners[0].addr.text, "127.0.0.1:2525");
	assert_int_equal(c->listeners[0].addr.ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&c->listeners[0].addr.ss)->sin_port), 2525);
	assert_string_equal(c->listeners[0].name, "127.0.0.1:2525");
	assert_int_equal(c->listeners[0].tls, CONF_TLS_NONE);
	assert_int_equal(c->listeners[0].auth, CONF_AUTH_NONE);
	assert_int_equal(c->listeners[0].relay, CONF_RELAY_NETWORKS);
	assert_false(c->listeners[0].allow_insecure_auth);
	assert_false(c->listeners[0].implicit_submission);
	assert_null(c->tls_cert);
	assert_null(c->tls_key);
	assert_int_equal(c->n_networks, 2);
	assert_int_equal(c->networks[0].family, AF_INET);
	assert_int_equal(c->networks[0].prefix, 8);
	assert_int_equal(c->networks[1].family, AF_INET6);
	assert_int_equal(c->networks[1].prefix, 128);
	assert_int_equal(c->n_users, 0);
	assert_int_equal(c->limits.max_message_size, 25 * 1024 * 1024);
	assert_int_equal(c->limits.max_recipients, 1000);
	assert_int_equal(c->limits.max_line, 8192);
	assert_int_equal(c->limits.max_connections, 1000);
	assert_int_equal(c->limits.max_connections_per_ip, 100);
	assert_int_equal(c->limits.max_errors, 10);
	assert_int_equal(c->limits.command_timeout_ms, 5 * 60000);
	assert_int_equal(c->limits.data_timeout_ms, 10 * 60000);
	assert_int_equal(c->limits.auth_failures_per_min, 5);
	assert_int_equal(c->n_upstreams, 1);
	assert_string_equal(c->upstreams[0].name, "primary");
	assert_int_equal(c->upstreams[0].port, 587);
	assert_int_equal(c->upstreams[0].tls, CONF_TLS_STARTTLS);
	assert_true(c->upstreams[0].verify);
	assert_null(c->upstreams[0].ca_file);
	assert_null(c->upstreams[0].username);
	assert_null(c->upstreams[0].password_file);
	assert_string_equal(c->upstreams[0].helo, c->hostname);
	assert_int_equal(c->upstreams[0].limits.per_day, 0);
	assert_int_equal(c->upstreams[0].limits.per_hour, 0);
	assert_int_equal(c->upstreams[0].limits.rate_count, 0);
	assert_int_equal(c->upstreams[0].limits.connections, 4);
	assert_int_equal(c->upstreams[0].limits.recipients_per_message, 100);
	assert_int_equal(c->upstreams[0].limits.max_size, 0);
	assert_int_equal(c->n_routes, 2);
	assert_int_equal(c->routes[0].n_upstreams, 1);
	assert_int_equal(c->routes[0].upstreams[0], 0);
	assert_false(c->routes[0].mx);
	assert_int_equal(c->routes[0].n_sender_domains, 0);
	assert_true(c->routes[1].mx);
	assert_int_equal(c->routes[1].n_upstreams, 0);
	assert_int_equal(c->n_retry, 5);
	assert_int_equal(c->retry_schedule_ms[0], 60000);
	assert_int_equal(c->retry_schedule_ms[1], 300000);
	assert_int_equal(c->retry_schedule_ms[2], 900000);
	assert_int_equal(c->retry_schedule_ms[3], 3600000);
	assert_int_equal(c->retry_schedule_ms[4], 4 * 3600000);
	assert_int_equal(c->retry_max_age_ms, 5ull * 86400000);
	assert_string_equal(c->api_listen.text, "127.0.0.1:8025");
	assert_null(c->api_token_file);
	assert_string_equal(c->api_control_socket, "/var/lib/hikyaku/control.sock");
	assert_string_equal(c->sendmail_socket, "/var/lib/hikyaku/sendmail.sock");
	assert_int_equal(c->log_retention_ms, 30ull * 86400000);
	assert_true(c->log_keep_bodies);
	assert_string_equal(c->log_level, "info");
	assert_int_equal(c->log_trace, 0);
	assert_int_equal(c->spool_workers, 0); /* automatic */
	assert_int_equal(c->refs, 1);
	conf_unref(c);
}

static void
test_every_key_parsed(void **state)
{
	char path[1100], *text;
	struct conf *c;

	(void)state;
	snprintf(path, sizeof(path), "%s/conf/ok_full.yaml", getenv("HK_DATA_DIR"));
	text = read_text(path);
	assert_non_null(text);
	c = load_ok(text);
	free(text);
	assert_string_equal(c->node, "relay1");
	assert_int_equal(c->node_id, 7);
	assert_string_equal(c->hostname, "relay1.example.com");
	assert_string_equal(c->user, "mailer");
	assert_int_equal(c->spool_workers, 4);
	assert_int_equal(c->n_listeners, 3);
	assert_int_equal(c->listeners[1].addr.ss.ss_family, AF_INET6);
	assert_int_equal(c->listeners[1].tls, CONF_TLS_STARTTLS);
	assert_int_equal(c->listeners[1].auth, CONF_AUTH_REQUIRED);
	assert_int_equal(c->listeners[1].relay, CONF_RELAY_AUTHENTICATED);
	assert_string_equal(c->listeners[1].name, "submission");
	assert_true(c->listeners[2].implicit_submission);
	assert_int_equal(c->listeners[2].relay, CONF_RELAY_NETWORKS | CONF_RELAY_AUTHENTICATED);
	assert_true(c->listeners[0].allow_insecure_auth);
	assert_string_equal(c->tls_cert, "/etc/hikyaku/tls.crt");
	assert_string_equal(c->tls_key, "/etc/hikyaku/tls.key");
	assert_int_equal(c->n_networks, 3);
	assert_int_equal(c->n_users, 2);
	assert_string_equal(c->users[1].name, "billing@example.com");
	assert_int_equal(c->limits.max_message_size, 10 * 1024 * 1024);
	assert_int_equal(c->limits.max_recipients, 500);
	assert_int_equal(c->limits.max_line, 4096);
	assert_int_equal(c->limits.max_connections, 200);
	assert_int_equal(c->limits.max_connections_per_ip, 20);
	assert_int_equal(c->limits.max_errors, 5);
	assert_int_equal(c->limits.command_timeout_ms, 120000);
	assert_int_equal(c->limits.data_timeout_ms, 900000);
	assert_int_equal(c->limits.auth_failures_per_min, 3);
	assert_int_equal(c->n_upstreams, 2);
	assert_int_equal(c->upstreams[0].limits.per_day, 500);
	assert_int_equal(c->upstreams[0].limits.per_hour, 100);
	assert_int_equal(c->upstreams[0].limits.rate_count, 10);
	assert_int_equal(c->upstreams[0].limits.rate_period_ms, 1000);
	assert_int_equal(c->upstreams[0].limits.connections, 2);
	assert_int_equal(c->upstreams[0].limits.recipients_per_message, 50);
	assert_int_equal(c->upstreams[0].limits.max_size, 25 * 1024 * 1024);
	assert_false(c->upstreams[0].verify);
	assert_string_equal(c->upstreams[0].helo, "out.example.com");
	assert_int_equal(c->upstreams[1].port, 465);
	assert_int_equal(c->upstreams[1].tls, CONF_TLS_IMPLICIT);
	assert_string_equal(c->upstreams[1].helo, "relay1.example.com");
	assert_int_equal(c->n_routes, 3);
	assert_int_equal(c->routes[0].n_upstreams, 2);
	assert_int_equal(c->routes[0].upstreams[0], 0);
	assert_int_equal(c->routes[0].upstreams[1], 1);
	assert_string_equal(c->routes[0].sender_domains[0], "example.com");
	assert_string_equal(c->routes[0].sender_domains[1], "mail.example.com");
	assert_string_equal(c->routes[1].recipient_domains[0], "example.org");
	assert_string_equal(c->routes[1].listeners[0], "submission");
	assert_string_equal(c->routes[1].users[0], "app");
	assert_int_equal(c->routes[1].upstreams[0], 1);
	assert_true(c->routes[2].mx);
	assert_int_equal(c->n_retry, 3);
	assert_int_equal(c->retry_schedule_ms[2], 2 * 3600000);
	assert_int_equal(c->retry_max_age_ms, 3ull * 86400000);
	assert_string_equal(c->api_listen.text, "[::1]:8025");
	assert_string_equal(c->api_token_file, "/etc/hikyaku/api.token");
	assert_string_equal(c->api_control_socket, "/run/hikyaku/control.sock");
	assert_string_equal(c->sendmail_socket, "/run/hikyaku/sendmail.sock");
	assert_string_equal(c->log_level, "debug");
	assert_int_equal(c->log_trace, TRACE_SMTPD | TRACE_SPOOL);
	assert_int_equal(c->log_retention_ms, 90ull * 86400000);
	assert_false(c->log_keep_bodies);
	conf_unref(c);
}

/* ---- several problems in one run, ordering, cap ---- */

static void
test_multiple_errors(void **state)
{
	static const char yaml[] =
		"listen:\n"
		"  - address: 127.0.0.1:25\n"
		"    tls: sometimes\n"
		"upstreams: []\n"
		"routes:\n"
		"  - name: default\n"
		"    upstreams: [nowhere]\n"
		"limits: { max_line: 12, max_message_size: 25X }\n"
		"retry: { max_age: soon }\n";
	unsigned count;
	char *got;

	(void)state;
	got = diags_of(yaml, false, &count);
	assert_int_equal(count, 5);
	assert_string_equal(got,
	    "t.yaml:3:10: listen[0].tls: \"sometimes\" is not one of: none, starttls, implicit\n"
	    "t.yaml:7:17: routes[0].upstreams[0]: unknown upstream \"nowhere\"\n"
	    "t.yaml:8:21: limits.max_line: 12 is out of range (1000 to 1048576)\n"
	    "t.yaml:8:43: limits.max_message_size: \"25X\" is not a size (use 512K, 25M, 1G)\n"
	    "t.yaml:9:19: retry.max_age: \"soon\" is not a duration (use 30s, 5m, 2h, 5d)\n");
	free(got);
}

static void
test_too_many_problems_are_capped(void **state)
{
	struct buf y = BUF_INIT;
	unsigned count;
	char *got;
	int i;

	(void)state;
	for (i = 0; i < 300; i++)
		buf_printf(&y, "bogus%d: 1\n", i);
	got = diags_of(y.ptr, false, &count);
	assert_int_equal(count, 101);
	assert_non_null(strstr(got, "too many problems; stopping here\n"));
	buf_fini(&y);
	free(got);
}

/* ---- files ---- */

struct tmpdir {
	char dir[256];
	char cert[300], key[300], pass[300], token[300], ca[300];
};

static void
tmpdir_make(struct tmpdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_conf.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->cert, sizeof(t->cert), "%s/tls.crt", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/tls.key", t->dir);
	snprintf(t->pass, sizeof(t->pass), "%s/primary.pass", t->dir);
	snprintf(t->token, sizeof(t->token), "%s/api.token", t->dir);
	snprintf(t->ca, sizeof(t->ca), "%s/ca.crt", t->dir);
	write_text(t->cert, "cert\n");
	write_text(t->key, "key\n");
	write_text(t->pass, "secret\n");
	write_text(t->token, "token\n");
	write_text(t->ca, "ca\n");
}

static void
tmpdir_remove(struct tmpdir *t)
{
	unlink(t->cert);
	unlink(t->key);
	unlink(t->pass);
	unlink(t->token);
	unlink(t->ca);
	rmdir(t->dir);
}

static char *
files_yaml(const struct tmpdir *t, const char *cert)
{
	return xasprintf("listen:\n"
			 "  - address: 127.0.0.1:465\n"
			 "    tls: implicit\n"
			 "tls: { cert: %s, key: %s }\n"
			 "upstreams:\n"
			 "  - name: primary\n"
			 "    host: smtp.example.net\n"
			 "    username: relay\n"
			 "    password_file: %s\n"
			 "    ca_file: %s\n"
			 "routes: [{ name: default, upstreams: [primary] }]\n"
			 "api: { token_file: %s }\n",
	    cert, t->key, t->pass, t->ca, t->token);
}

static void
test_file_checks(void **state)
{
	struct tmpdir t;
	struct conf *c = NULL;
	struct conf_diag d;
	char *yaml, *got, *want, missing[400];
	unsigned count;

	(void)state;
	tmpdir_make(&t);
	/* All files readable: loads with and without checks. */
	yaml = files_yaml(&t, t.cert);
	conf_diag_init(&d);
	assert_int_equal(load(yaml, true, &c, &d), 0);
	assert_string_equal(c->tls_cert, t.cert);
	conf_unref(c);
	free(yaml);

	/* A missing certificate: an error with checks, fine without. */
	snprintf(missing, sizeof(missing), "%s/nope.crt", t.dir);
	yaml = files_yaml(&t, missing);
	got = diags_of(yaml, true, &count);
	want = xasprintf("t.yaml:4:14: tls.cert: cannot read \"%s\": No such file or directory\n",
	    missing);
	assert_string_equal(got, want);
	free(got);
	free(want);
	assert_int_equal(load(yaml, false, &c, &d), 0);
	conf_unref(c);
	free(yaml);

	/* Every checked file missing at once: five diagnostics, one per key. */
	tmpdir_remove(&t);
	yaml = files_yaml(&t, t.cert);
	got = diags_of(yaml, true, &count);
	assert_int_equal(count, 5);
	assert_non_null(strstr(got, "tls.key: cannot read"));
	assert_non_null(strstr(got, "upstreams[0].password_file: cannot read"));
	assert_non_null(strstr(got, "upstreams[0].ca_file: cannot read"));
	assert_non_null(strstr(got, "api.token_file: cannot read"));
	free(got);
	assert_int_equal(load(yaml, false, &c, &d), 0);
	conf_unref(c);
	free(yaml);
	conf_diag_fini(&d);
}

static void
test_file_check_rejects_directory(void **state)
{
	unsigned count;
	char *got;

	(void)state;
	got = diags_of("listen: []\nupstreams: []\nroutes: [{name: d, mx: true}]\n"
		       "api: { token_file: /tmp }\n",
	    true, &count);
	assert_string_equal(got, "t.yaml:4:20: api.token_file: \"/tmp\" is not a regular file\n");
	free(got);
}

static void
test_conf_load_from_file(void **state)
{
	struct tmpdir t;
	char path[400];
	struct conf *c = NULL;
	struct conf_diag d;

	(void)state;
	tmpdir_make(&t);
	snprintf(path, sizeof(path), "%s/hikyaku.yaml", t.dir);
	write_text(path, ten_lines);
	conf_diag_init(&d);
	assert_int_equal(conf_load(path, &c, &d), 0);
	assert_string_equal(c->path, path);
	assert_ptr_equal(conf_ref(c), c);
	assert_int_equal(c->refs, 2);
	conf_unref(c);
	assert_int_equal(c->refs, 1);
	conf_unref(c);

	/* Diagnostics carry the path as given. */
	write_text(path, "listen: []\nupstreams: []\nroutes: []\nlistn: 1\n");
	assert_int_equal(conf_load(path, &c, &d), -1);
	assert_null(c);
	assert_int_equal(d.count, 2);
	{
		char *want = xasprintf(
		    "%s:3:9: routes: needs at least one route (mail must go somewhere)\n"
		    "%s:4:1: unknown key \"listn\" in the top level (did you mean \"listen\"?)\n",
		    path, path);

		assert_string_equal(d.text.ptr, want);
		free(want);
	}
	unlink(path);
	conf_diag_fini(&d);

	/* A missing file is one diagnostic. */
	conf_diag_init(&d);
	assert_int_equal(conf_load(path, &c, &d), -1);
	assert_int_equal(d.count, 1);
	assert_non_null(strstr(d.text.ptr, ":1:1: cannot read the configuration: No such file"));
	conf_diag_fini(&d);
	tmpdir_remove(&t);
}

/* ---- lookups, addresses, networks ---- */

static void
test_lookups(void **state)
{
	struct conf *c;

	(void)state;
	c = load_ok("listen: []\n"
		    "users: [{ name: app, password_hash: \"$y$j9T$abcdefgh$0123456789abcdef\" }]\n"
		    "upstreams: [{ name: a, host: 192.0.2.1 }, { name: b, host: b.example }]\n"
		    "routes: [{ name: d, upstreams: [b, a] }]\n");
	assert_ptr_equal(conf_upstream_find(c, "b"), &c->upstreams[1]);
	assert_null(conf_upstream_find(c, "c"));
	assert_ptr_equal(conf_user_find(c, "app"), &c->users[0]);
	assert_null(conf_user_find(c, "App"));
	assert_int_equal(c->routes[0].upstreams[0], 1);
	assert_int_equal(c->routes[0].upstreams[1], 0);
	conf_unref(c);
	conf_unref(NULL);
}

static void
test_addr_parse(void **state)
{
	static const struct {
		const char *text;
		int family; /* 0: must fail */
		unsigned port;
	} cases[] = {
		{ "127.0.0.1:25", AF_INET, 25 },
		{ "0.0.0.0:587", AF_INET, 587 },
		{ "[::1]:2525", AF_INET6, 2525 },
		{ "[::]:25", AF_INET6, 25 },
		{ "/run/hikyaku/smtp.sock", AF_UNIX, 0 },
		{ "./var/run/x.sock", AF_UNIX, 0 },
		{ "localhost:25", 0, 0 },
		{ "127.0.0.1", 0, 0 },
		{ "127.0.0.1:0", 0, 0 },
		{ "127.0.0.1:65536", 0, 0 },
		{ "127.0.0.1:+25", 0, 0 },
		{ "::1:25", 0, 0 },
		{ "[::1]25", 0, 0 },
		{ "[::1:25", 0, 0 },
		{ "[]:25", 0, 0 },
		{ "[127.0.0.1]:25", 0, 0 },
		{ ":25", 0, 0 },
		{ "127.0.0.300:25", 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(cases); i++) {
		struct conf_addr a = { 0 };
		const char *why = NULL;
		int rc = conf_addr_parse(cases[i].text, &a, &why);

		if (cases[i].family == 0) {
			if (rc != -1)
				fail_msg("%s: accepted", cases[i].text);
			assert_non_null(why);
			assert_null(a.text);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: refused: %s", cases[i].text, why);
		assert_string_equal(a.text, cases[i].text);
		assert_int_equal(a.ss.ss_family, cases[i].family);
		if (cases[i].family == AF_INET) {
			assert_int_equal(a.len, sizeof(struct sockaddr_in));
			assert_int_equal(ntohs(((struct sockaddr_in *)&a.ss)->sin_port),
			    cases[i].port);
		} else if (cases[i].family == AF_INET6) {
			assert_int_equal(a.len, sizeof(struct sockaddr_in6));
			assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port),
			    cases[i].port);
		} else {
			assert_string_equal(((struct sockaddr_un *)&a.ss)->sun_path, cases[i].text);
		}
		free(a.text);
	}
}

static void
sa_of(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr), 1);
	ss->ss_family = AF_INET6;
}

static void
test_cidr(void **state)
{
	static const struct {
		const char *cidr, *ip;
		int want; /* 1 inside, 0 outside, -1 cidr refused */
	} cases[] = {
		{ "10.0.0.0/8", "10.255.1.2", 1 },
		{ "10.0.0.0/8", "11.0.0.1", 0 },
		{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
		{ "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
		{ "10.0.0.0/8", "::a01:203", 0 },
		{ "192.168.1.0/25", "192.168.1.127", 1 },
		{ "192.168.1.0/25", "192.168.1.128", 0 },
		{ "0.0.0.0/0", "203.0.113.9", 1 },
		{ "0.0.0.0/0", "2001:db8::1", 0 },
		{ "::/0", "2001:db8::1", 1 },
		{ "::1/128", "::1", 1 },
		{ "::1", "::2", 0 },
		{ "192.0.2.7", "192.0.2.7", 1 },
		{ "192.0.2.7", "192.0.2.8", 0 },
		{ "2001:db8::/33", "2001:db8:7fff::1", 1 },
		{ "2001:db8::/33", "2001:db8:8000::1", 0 },
		{ "::ffff:10.0.0.0/104", "10.9.9.9", 1 },
		{ "::ffff:10.0.0.0/104", "::ffff:10.9.9.9", 1 },
		{ "10.0.0.1/8", NULL, -1 },
		{ "10.0.0.0/33", NULL, -1 },
		{ "::/129", NULL, -1 },
		{ "10.0.0.0/", NULL, -1 },
		{ "10.0.0.0/-1", NULL, -1 },
		{ "10.0.0/8", NULL, -1 },
		{ "/8", NULL, -1 },
		{ "example.com/8", NULL, -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < HK_ARRAY_LEN(cases); i++) {
		struct conf_cidr cidr;
		struct sockaddr_storage ss;
		const char *why = NULL;
		int rc = conf_cidr_parse(cases[i].cidr, &cidr, &why);

		if (cases[i].want == -1) {
			if (rc != -1)
				fail_msg("%s: accepted", cases[i].cidr);
			assert_non_null(why);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: refused: %s", cases[i].cidr, why);
		sa_of(cases[i].ip, &ss);
		if (conf_cidr_contains(&cidr, (struct sockaddr *)&ss) != (cases[i].want == 1))
			fail_msg("%s contains %s: expected %d", cases[i].cidr, cases[i].ip,
			    cases[i].want);
	}
}

static void
test_networks_contain(void **state)
{
	struct sockaddr_storage ss;
	struct conf *c;

	(void)state;
	c = load_ok("listen: []\nupstreams: []\nroutes: [{name: d, mx: true}]\n"
		    "networks: [192.0.2.0/24, \"2001:db8::/32\"]\n");
	sa_of("192.0.2.200", &ss);
	assert_true(conf_networks_contain(c, (struct sockaddr *)&ss));
	sa_of("::ffff:192.0.2.200", &ss);
	assert_true(conf_networks_contain(c, (struct sockaddr *)&ss));
	sa_of("2001:db8:1::5", &ss);
	assert_true(conf_networks_contain(c, (struct sockaddr *)&ss));
	sa_of("127.0.0.1", &ss);
	assert_false(conf_networks_contain(c, (struct sockaddr *)&ss));
	ss.ss_family = AF_UNIX;
	assert_false(conf_networks_contain(c, (struct sockaddr *)&ss));
	conf_unref(c);

	/* An empty list trusts nobody. */
	c = load_ok("listen: []\nupstreams: []\nroutes: [{name: d, mx: true}]\nnetworks: []\n");
	assert_int_equal(c->n_networks, 0);
	sa_of("127.0.0.1", &ss);
	assert_false(conf_networks_contain(c, (struct sockaddr *)&ss));
	conf_unref(c);
}

static void
test_relative_paths_kept(void **state)
{
	struct conf *c;

	(void)state;
	c = load_ok("spool: ./var/spool\nstate: ./var/lib/\nlisten: []\nupstreams: []\n"
		    "routes: [{name: d, mx: true}]\n");
	assert_string_equal(c->spool, "./var/spool");
	assert_string_equal(c->api_control_socket, "./var/lib/control.sock");
	assert_string_equal(c->sendmail_socket, "./var/lib/sendmail.sock");
	conf_unref(c);
}

static void
test_sendmail_socket(void **state)
{
	struct conf *c;
	struct conf_diag d;
	char yaml[400];
	static const char base[] = "listen: []\nupstreams: []\nroutes: [{name: d, mx: true}]\n";
	int rc;

	(void)state;
	c = load_ok("listen: []\nupstreams: []\nroutes: [{name: d, mx: true}]\n"
		    "sendmail: { socket: /srv/mail/sm.sock }\n");
	assert_string_equal(c->sendmail_socket, "/srv/mail/sm.sock");
	conf_unref(c);

	/* Not a path, or too long for a socket address: refused with the position. */
	conf_diag_init(&d);
	snprintf(yaml, sizeof(yaml), "%ssendmail:\n  socket: localhost:25\n", base);
	rc = conf_load_string("t.yaml", yaml, strlen(yaml), false, &c, &d);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(d.text.ptr, "t.yaml:5:11: "));
	assert_non_null(strstr(d.text.ptr, "not a Unix socket path"));
	conf_diag_fini(&d);
	conf_diag_init(&d);
	snprintf(yaml, sizeof(yaml), "%ssendmail: { socket: /%0120d }\n", base, 0);
	rc = conf_load_string("t.yaml", yaml, strlen(yaml), false, &c, &d);
	assert_int_equal(rc, -1);
	conf_diag_fini(&d);

	/* A control socket whose sibling path would not fit: no sendmail socket by default. */
	snprintf(yaml, sizeof(yaml), "%sapi: { control_socket: /%0100d/c.sock }\n", base, 0);
	c = load_ok(yaml);
	assert_null(c->sendmail_socket);
	conf_unref(c);
}

/* The shipped files stay valid: make run starts from the first, make install copies the second. */
static void
test_shipped_configs_load(void **state)
{
	char path[1100], *text;
	struct conf_diag d;
	struct conf *c = NULL;

	(void)state;
	conf_diag_init(&d);
	snprintf(path, sizeof(path), "%s/../../etc/hikyaku.dev.yaml", getenv("HK_DATA_DIR"));
	if (conf_load(path, &c, &d) != 0)
		fail_msg("%s", d.text.ptr);
	assert_string_equal(c->listeners[0].addr.text, "127.0.0.1:2525");
	assert_string_equal(c->spool, "./var/spool");
	assert_string_equal(c->state, "./var/lib");
	assert_string_equal(c->api_control_socket, "./var/run/control.sock");
	assert_string_equal(c->sendmail_socket, "./var/run/sendmail.sock");
	assert_string_equal(c->api_listen.text, "127.0.0.1:8025");
	assert_int_equal(c->n_upstreams, 0);
	assert_true(c->routes[0].mx);
	conf_unref(c);

	snprintf(path, sizeof(path), "%s/../../etc/hikyaku.example.yaml", getenv("HK_DATA_DIR"));
	text = read_text(path);
	assert_non_null(text);
	if (conf_load_string(path, text, strlen(text), false, &c, &d) != 0)
		fail_msg("%s", d.text.ptr);
	assert_int_equal(c->n_listeners, 3);
	assert_int_equal(c->n_upstreams, 2);
	conf_unref(c);
	free(text);
	conf_diag_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_sendmail_socket),
		cmocka_unit_test(test_every_key_parsed),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_too_many_problems_are_capped),
		cmocka_unit_test(test_file_checks),
		cmocka_unit_test(test_file_check_rejects_directory),
		cmocka_unit_test(test_conf_load_from_file),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_networks_contain),
		cmocka_unit_test(test_relative_paths_kept),
		cmocka_unit_test(test_shipped_configs_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
