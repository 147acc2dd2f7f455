/*
 * test_dns.c - the resolver against a fake authoritative server on loopback
 * (tests/unit/dns_fake.py, started once for the group and stopped by PID): MX order and
 * shuffle, implicit MX, NXDOMAIN, null MX, A+AAAA merge, TLSA, SERVFAIL, timeouts against a
 * socket that never answers, callbacks never synchronous, dns_free() with queries outstanding,
 * and the dns: configuration section.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "dns/dns.h"
#include "dns/dns_wire.h"
#include "util/clock.h"
#include "util/poison.h"

static const char zone[] =
    "mx.example. 300 IN MX 20 b.mx.example.\n"
    "mx.example. 300 IN MX 10 a.mx.example.\n"
    "mx.example. 300 IN MX 30 c.mx.example.\n"
    "eq.example. 300 IN MX 10 x.eq.example.\n"
    "eq.example. 300 IN MX 10 y.eq.example.\n"
    "eq.example. 300 IN MX 5 first.eq.example.\n"
    "NoMX.example. 300 IN A 192.0.2.10\n"
    "null.example. 300 IN MX 0 .\n"
    "host.example. 300 IN A 192.0.2.1\n"
    "host.example. 300 IN A 192.0.2.2\n"
    "host.example. 300 IN AAAA 2001:db8::1\n"
    "v4.example. 300 IN A 192.0.2.4\n"
    "_25._tcp.mx1.example. 300 IN TLSA 3 1 1 "
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n"
    "_25._tcp.mx1.example. 300 IN TLSA 3 0 0 "
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40\n"
    "txt.example. 300 IN TXT \"v=spf1 \" \"-all\"\n"
    "txt.example. 300 IN TXT \"second\"\n"
    "2.0.18.198.in-addr.arpa. 300 IN PTR Mail.Host.example.\n"
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.3.ip6.arpa. 300 IN PTR "
    "v6.host.example.\n"
    "$SERVFAIL broken.example\n"
    "$DROP slow.example\n";

static struct {
	pid_t pid;
	unsigned port;
	int silent_fd;       /* a UDP socket nobody reads: a server that never answers */
	unsigned silent_port;
	char dir[64];
	char zone_path[128];
} fake = { .pid = -1, .silent_fd = -1 };

/* ---- the fake server ---- */

static void
write_zone(void)
{
	FILE *f;
	int i;

	snprintf(fake.dir, sizeof(fake.dir), "/tmp/hk-dns-XXXXXX");
	assert_non_null(mkdtemp(fake.dir));
	snprintf(fake.zone_path, sizeof(fake.zone_path), "%s/zone", fake.dir);
	f = fopen(fake.zone_path, "w");
	assert_non_null(f);
	fputs(zone, f);
	/* 40 MX records with preferences 40 down to 1, for the cap at DNS_MAX_RESULTS. */
	for (i = 40; i >= 1; i--)
		fprintf(f, "many.example. 300 IN MX %d h%d.many.example.\n", i, i);
	assert_int_equal(fclose(f), 0);
}

/* Read "PORT n\n" from fd within 10 s. */
static unsigned
read_port(int fd)
{
	char line[64];
	size_t n = 0;
	uint64_t deadline = clock_mono_ms() + 10000;
	unsigned port = 0;

	while (n < sizeof(line) - 1 && memchr(line, '\n', n) == NULL) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = clock_mono_ms();
		ssize_t got;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			break;
		got = read(fd, line + n, sizeof(line) - 1 - n);
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	line[n] = '\0';
	if (sscanf(line, "PORT %u", &port) != 1)
		return 0;
	return port;
}

static int
group_setup(void **state)
{
	const char *data = getenv("HK_DATA_DIR");
	char script[512];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int pipefd[2];

	(void)state;
	if (data == NULL)
		return -1;
	snprintf(script, sizeof(script), "%s/../unit/dns_fake.py", data);
	write_zone();
	if (pipe(pipefd) == -1)
		return -1;
	fake.pid = fork();
	if (fake.pid == -1)
		return -1;
	if (fake.pid == 0) {
		char *argv[] = { "/usr/bin/python3", script, "0", fake.zone_path, NULL };

		/* Should the test crash, the server goes with it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	fake.port = read_port(pipefd[0]);
	close(pipefd[0]);
	if (fake.port == 0)
		return -1;
	fake.silent_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fake.silent_fd == -1 || bind(fake.silent_fd, (struct sockaddr *)&sin, len) == -1 ||
	    getsockname(fake.silent_fd, (struct sockaddr *)&sin, &len) == -1)
		return -1;
	fake.silent_port = ntohs(sin.sin_port);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (fake.pid > 0) {
		kill(fake.pid, SIGTERM);
		waitpid(fake.pid, NULL, 0);
		fake.pid = -1;
	}
	if (fake.silent_fd != -1)
		close(fake.silent_fd);
	unlink(fake.zone_path);
	rmdir(fake.dir);
	return 0;
}

/* ---- a resolver and a loop per test ---- */

struct env {
	struct event_base *base;
	struct dns *dns;
	char fwd[64];
	const char *forward[2];
};

static void
env_open(struct env *e, unsigned port, uint64_t timeout_ms)
{
	struct dns_params p = { .timeout_ms = timeout_ms };
	struct hk_err err = { 0 };

	e->base = event_base_new();
	assert_non_null(e->base);
	snprintf(e->fwd, sizeof(e->fwd), "127.0.0.1@%u", port);
	e->forward[0] = e->fwd;
	e->forward[1] = NULL;
	p.forward = e->forward;
	e->dns = dns_new(e->base, &p, &err);
	if (e->dns == NULL)
		fail_msg("dns_new: %s", err.text);
}

static void
env_close(struct env *e)
{
	dns_free(e->dns);
	event_base_free(e->base);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Run the loop until *count reaches want or ms pass; returns whether it was reached. */
static bool
run_until(struct event_base *base, const int *count, int want, uint64_t ms)
{
	bool expired = false;
	struct event *t = evtimer_new(base, deadline_cb, &expired);
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000 * 1000) };

	evtimer_add(t, &tv);
	while (*count < want && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *count >= want;
}

struct got_mx {
	int count;
	struct dns_mx_result r;
};

static void
mx_cb(void *arg, const struct dns_mx_result *r)
{
	struct got_mx *g = arg;

	g->count++;
	g->r = *r;
}

struct got_addr {
	int count;
	struct dns_addr_result r;
};

static void
addr_cb(void *arg, const struct dns_addr_result *r)
{
	struct got_addr *g = arg;

	g->count++;
	g->r = *r;
}

struct got_tlsa {
	int count;
	struct dns_tlsa_result r;
};

static void
tlsa_cb(void *arg, const struct dns_tlsa_result *r)
{
	struct got_tlsa *g = arg;

	g->count++;
	g->r = *r;
}

static void
lookup_mx(struct env *e, const char *domain, struct got_mx *g)
{
	memset(g, 0, sizeof(*g));
	dns_mx(e->dns, domain, mx_cb, g);
	/* Never synchronous, whatever the answer and wherever it comes from. */
	assert_int_equal(g->count, 0);
	assert_true(run_until(e->base, &g->count, 1, 10000));
}

static void
lookup_addrs(struct env *e, const char *host, struct got_addr *g)
{
	memset(g, 0, sizeof(*g));
	dns_addrs(e->dns, host, addr_cb, g);
	assert_int_equal(g->count, 0);
	assert_true(run_until(e->base, &g->count, 1, 10000));
}

/* ---- wire format ---- */

struct pkt {
	uint8_t b[1024];
	size_t n;
};

static void
put(struct pkt *p, const void *data, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, data, n);
	p->n += n;
}

static void
put16(struct pkt *p, unsigned v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(p, b, 2);
}

/* "mx.example" at offset 12 as the question, type qtype; ancount given. */
static void
pkt_head(struct pkt *p, unsigned ancount)
{
	static const uint8_t qname[] = "\x02mx\x07" "example";

	memset(p, 0, sizeof(*p));
	put16(p, 0x1234);
	put16(p, 0x8180);
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	put(p, qname, sizeof(qname)); /* with the root label */
	put16(p, 15);
	put16(p, 1);
}

/* An MX record owned by the question name (pointer 0xc00c) in class cls. */
static void
pkt_mx(struct pkt *p, unsigned cls, unsigned pref, const void *target, size_t target_len)
{
	put16(p, 0xc00c);
	put16(p, 15);
	put16(p, cls);
	put16(p, 0);
	put16(p, 300);
	put16(p, (unsigned)(2 + target_len));
	put16(p, pref);
	put(p, target, target_len);
}

static void
test_wire_names(void **state)
{
	char out[DNS_NAME_MAX];
	struct pkt p;
	uint8_t longname[300];
	size_t i;

	(void)state;
	pkt_head(&p, 0);
	assert_int_equal(dns_wire_name(p.b, p.n, 12, false, out, sizeof(out)), 0);
	assert_string_equal(out, "mx.example");
	/* "A" + pointer to the question name; upper case folded. */
	put(&p, "\x01" "A\xc0\x0c", 4);
	assert_int_equal(dns_wire_name(p.b, p.n, p.n - 4, true, out, sizeof(out)), 0);
	assert_string_equal(out, "a.mx.example");
	/* Pointers refused where they cannot point anywhere meaningful. */
	assert_int_equal(dns_wire_name(p.b, p.n, p.n - 4, false, out, sizeof(out)), -1);
	/* A pointer to itself, and one forward: both could loop. */
	put(&p, "\xc0", 1);
	put(&p, (uint8_t[]){ (uint8_t)(p.n - 1) }, 1);
	assert_int_equal(dns_wire_name(p.b, p.n, p.n - 2, true, out, sizeof(out)), -1);
	p.b[p.n - 1] = (uint8_t)(p.n + 4);
	assert_int_equal(dns_wire_name(p.b, p.n, p.n - 2, true, out, sizeof(out)), -1);
	/* Cut short: a pointer missing its second byte, a label longer than the rest. */
	assert_int_equal(dns_wire_name(p.b, p.n - 1, p.n - 2, true, out, sizeof(out)), -1);
	assert_int_equal(dns_wire_name((const uint8_t *)"\x05" "ab", 3, 0, false, out,
	    sizeof(out)), -1);
	/* The root, a space in a label, an extended label type. */
	assert_int_equal(dns_wire_name((const uint8_t *)"", 1, 0, false, out, sizeof(out)), 0);
	assert_string_equal(out, ".");
	assert_int_equal(dns_wire_name((const uint8_t *)"\x03" "a b", 5, 0, false, out,
	    sizeof(out)), -1);
	assert_int_equal(dns_wire_name((const uint8_t *)"\x41" "a", 3, 0, false, out,
	    sizeof(out)), -1);
	/* Four labels of 63: 255 characters, over the 253 a name can have. */
	for (i = 0; i < 4; i++) {
		longname[i * 64] = 63;
		memset(longname + i * 64 + 1, 'a', 63);
	}
	longname[256] = 0;
	assert_int_equal(dns_wire_name(longname, 257, 0, false, out, sizeof(out)), -1);
	longname[3 * 64] = 61;
	longname[3 * 64 + 62] = 0;
	assert_int_equal(dns_wire_name(longname, 257, 0, false, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 253);
}

static void
test_wire_answers(void **state)
{
	struct dns_wire_answers w;
	struct dns_rdata rd;
	char out[DNS_NAME_MAX];
	struct pkt p;

	(void)state;
	pkt_head(&p, 3);
	pkt_mx(&p, 1, 10, "\x01" "a\xc0\x0c", 4);
	pkt_mx(&p, 3, 20, "\x01" "c\xc0\x0c", 4); /* class CH: not ours */
	pkt_mx(&p, 1, 30, "\x01" "b\xc0\x0c", 4);
	assert_int_equal(dns_wire_answers_open(&w, p.b, p.n), 0);
	assert_true(dns_wire_answers_next(&w, 15, &rd));
	assert_int_equal(dns_wire_be16(rd.p + rd.off), 10);
	assert_int_equal(dns_wire_name(rd.p, rd.p_len, rd.off + 2, rd.ptr_ok, out, sizeof(out)),
	    0);
	assert_string_equal(out, "a.mx.example");
	assert_true(dns_wire_answers_next(&w, 15, &rd));
	assert_int_equal(dns_wire_be16(rd.p + rd.off), 30);
	assert_false(dns_wire_answers_next(&w, 15, &rd));
	/* Other types are passed over. */
	assert_int_equal(dns_wire_answers_open(&w, p.b, p.n), 0);
	assert_false(dns_wire_answers_next(&w, 1, &rd));
	/* More answers announced than present, a cut record, a short header. */
	p.b[7] = 4;
	assert_int_equal(dns_wire_answers_open(&w, p.b, p.n), -1);
	p.b[7] = 3;
	assert_int_equal(dns_wire_answers_open(&w, p.b, p.n - 1), -1);
	assert_int_equal(dns_wire_answers_open(&w, p.b, 11), -1);
	assert_int_equal(dns_wire_answers_open(&w, NULL, 0), -1);
}

/* ---- MX ---- */

static void
test_mx_sorted_by_preference(void **state)
{
	struct env e;
	struct got_mx g;

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_mx(&e, "mx.example", &g);
	assert_int_equal(g.r.status, DNS_OK);
	assert_false(g.r.implicit);
	assert_false(g.r.secure);
	assert_int_equal(g.r.n, 3);
	assert_string_equal(g.r.hosts[0].name, "a.mx.example");
	assert_int_equal(g.r.hosts[0].pref, 10);
	assert_string_equal(g.r.hosts[1].name, "b.mx.example");
	assert_int_equal(g.r.hosts[1].pref, 20);
	assert_string_equal(g.r.hosts[2].name, "c.mx.example");
	assert_int_equal(g.r.hosts[2].pref, 30);
	/* Exactly once: nothing more arrives later. */
	assert_false(run_until(e.base, &g.count, 2, 200));
	assert_int_equal(g.count, 1);
	env_close(&e);
}

static void
test_mx_equal_preferences_shuffled(void **state)
{
	struct env e;
	struct got_mx g;
	int xy = 0, yx = 0, i;

	(void)state;
	env_open(&e, fake.port, 5000);
	/* The answer is cached after the first run; the order is drawn again every time. */
	for (i = 0; i < 64 && (xy == 0 || yx == 0); i++) {
		lookup_mx(&e, "eq.example", &g);
		assert_int_equal(g.r.status, DNS_OK);
		assert_int_equal(g.r.n, 3);
		assert_string_equal(g.r.hosts[0].name, "first.eq.example");
		assert_int_equal(g.r.hosts[1].pref, 10);
		assert_int_equal(g.r.hosts[2].pref, 10);
		if (strcmp(g.r.hosts[1].name, "x.eq.example") == 0) {
			assert_string_equal(g.r.hosts[2].name, "y.eq.example");
			xy++;
		} else {
			assert_string_equal(g.r.hosts[1].name, "y.eq.example");
			assert_string_equal(g.r.hosts[2].name, "x.eq.example");
			yx++;
		}
	}
	/* Chance of missing an order in 64 fair draws: 2^-63. */
	assert_true(xy > 0 && yx > 0);
	env_close(&e);
}

static void
test_mx_capped_best_first(void **state)
{
	struct env e;
	struct got_mx g;
	size_t i;
	char want[64];

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_mx(&e, "many.example", &g);
	assert_int_equal(g.r.status, DNS_OK);
	assert_int_equal(g.r.n, DNS_MAX_RESULTS);
	for (i = 0; i < g.r.n; i++) {
		assert_int_equal(g.r.hosts[i].pref, i + 1);
		snprintf(want, sizeof(want), "h%zu.many.example", i + 1);
		assert_string_equal(g.r.hosts[i].name, want);
	}
	env_close(&e);
}

static void
test_mx_none_is_implicit(void **state)
{
	struct env e;
	struct got_mx g;

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_mx(&e, "NoMX.Example.", &g);
	assert_int_equal(g.r.status, DNS_OK);
	assert_true(g.r.implicit);
	assert_int_equal(g.r.n, 1);
	assert_string_equal(g.r.hosts[0].name, "nomx.example");
	assert_int_equal(g.r.hosts[0].pref, 0);
	env_close(&e);
}

static void
test_mx_nxdomain(void **state)
{
	struct env e;
	struct got_mx g;

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_mx(&e, "missing.example", &g);
	assert_int_equal(g.r.status, DNS_NXDOMAIN);
	assert_int_equal(g.r.n, 0);
	assert_non_null(strstr(g.r.why, "NXDOMAIN"));
	env_close(&e);
}

static void
test_mx_null(void **state)
{
	struct env e;
	struct got_mx g;

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_mx(&e, "null.example", &g);
	assert_int_equal(g.r.status, DNS_NULL_MX);
	assert_int_equal(g.r.n, 0);
	assert_string_equal(dns_status_name(g.r.status), "null_mx");
	env_close(&e);
}

static void
test_mx_invalid_name(void **state)
{
	static const char *const bad[] = { "", ".", "a..example", "sp ace.example",
		"-\\046.example", "\xc3\xa9t\xc3\xa9.example" };
	struct env e;
	struct got_mx g;
	size_t i;

	(void)state;
	env_open(&e, fake.port, 5000);
	for (i = 0; i < HK_ARRAY_LEN(bad); i++) {
		lookup_mx(&e, bad[i], &g);
		assert_int_equal(g.r.status, DNS_NXDOMAIN);
		assert_string_equal(g.r.why, "not a valid domain name");
	}
	env_close(&e);
}

/* ---- addresses ---- */

static void
test_addrs_merged_v6_first(void **state)
{
	struct env e;
	struct got_addr g;
	char text[INET6_ADDRSTRLEN];
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;
	size_t i;

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_addrs(&e, "host.example", &g);
	assert_int_equal(g.r.status, DNS_OK);
	assert_int_equal(g.r.n, 3);
	assert_int_equal(g.r.addrs[0].ss_family, AF_INET6);
	assert_int_equal(g.r.lens[0], sizeof(struct sockaddr_in6));
	s6 = (const struct sockaddr_in6 *)&g.r.addrs[0];
	inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
	assert_string_equal(text, "2001:db8::1");
	for (i = 1; i < 3; i++) {
		assert_int_equal(g.r.addrs[i].ss_family, AF_INET);
		assert_int_equal(g.r.lens[i], sizeof(struct sockaddr_in));
		s4 = (const struct sockaddr_in *)&g.r.addrs[i];
		assert_int_equal(s4->sin_port, 0);
		inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text));
		assert_true(strcmp(text, "192.0.2.1") == 0 || strcmp(text, "192.0.2.2") == 0);
	}
	env_close(&e);
}

static void
test_addrs_one_family(void **state)
{
	struct env e;
	struct got_addr g;
	char text[INET_ADDRSTRLEN];

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_addrs(&e, "v4.example", &g);
	assert_int_equal(g.r.status, DNS_OK);
	assert_int_equal(g.r.n, 1);
	inet_ntop(AF_INET, &((const struct sockaddr_in *)&g.r.addrs[0])->sin_addr, text,
	    sizeof(text));
	assert_string_equal(text, "192.0.2.4");
	env_close(&e);
}

static void
test_addrs_nodata_nxdomain(void **state)
{
	struct env e;
	struct got_addr g;

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_addrs(&e, "mx.example", &g);
	assert_int_equal(g.r.status, DNS_NODATA);
	assert_int_equal(g.r.n, 0);
	lookup_addrs(&e, "missing.example", &g);
	assert_int_equal(g.r.status, DNS_NXDOMAIN);
	lookup_addrs(&e, "bad name", &g);
	assert_int_equal(g.r.status, DNS_NXDOMAIN);
	env_close(&e);
}

static void
test_addrs_literal_without_query(void **state)
{
	struct env e;
	struct got_addr g;

	(void)state;
	/* The silent server: a query would time out, a literal needs none. */
	env_open(&e, fake.silent_port, 5000);
	lookup_addrs(&e, "192.0.2.7", &g);
	assert_int_equal(g.r.status, DNS_OK);
	assert_int_equal(g.r.n, 1);
	assert_int_equal(g.r.addrs[0].ss_family, AF_INET);
	lookup_addrs(&e, "::1", &g);
	assert_int_equal(g.r.status, DNS_OK);
	assert_int_equal(g.r.n, 1);
	assert_int_equal(g.r.addrs[0].ss_family, AF_INET6);
	assert_int_equal(g.r.lens[0], sizeof(struct sockaddr_in6));
	env_close(&e);
}

/* ---- TLSA ---- */

static void
test_tlsa_parsed(void **state)
{
	struct env e;
	struct got_tlsa g = { 0 };
	size_t i;

	(void)state;
	env_open(&e, fake.port, 5000);
	dns_tlsa(e.dns, "MX1.example", 25, tlsa_cb, &g);
	assert_int_equal(g.count, 0);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.r.status, DNS_OK);
	assert_false(g.r.secure);
	/* The 65-byte full-certificate record does not fit and is skipped, with a reason. */
	assert_int_equal(g.r.n, 1);
	assert_int_equal(g.r.recs[0].usage, 3);
	assert_int_equal(g.r.recs[0].selector, 1);
	assert_int_equal(g.r.recs[0].mtype, 1);
	assert_int_equal(g.r.recs[0].len, 32);
	for (i = 0; i < 32; i++)
		assert_int_equal(g.r.recs[0].data[i], i + 1);
	assert_non_null(strstr(g.r.why, "1 TLSA records skipped"));

	memset(&g, 0, sizeof(g));
	dns_tlsa(e.dns, "mx.example", 25, tlsa_cb, &g);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.r.status, DNS_NXDOMAIN);
	assert_int_equal(g.r.n, 0);
	env_close(&e);
}

/* ---- TXT and PTR ---- */

struct got_txt {
	int count;
	enum dns_status status;
	size_t n;
	char recs[4][128];
};

static void
txt_cb(void *arg, const struct dns_txt_result *r)
{
	struct got_txt *g = arg;
	size_t i;

	g->count++;
	g->status = r->status;
	g->n = r->n;
	for (i = 0; i < r->n && i < 4; i++) {
		assert_int_equal(strlen(r->recs[i]), r->lens[i]);
		snprintf(g->recs[i], sizeof(g->recs[i]), "%s", r->recs[i]);
	}
}

struct got_ptr {
	int count;
	struct dns_ptr_result r;
};

static void
ptr_cb(void *arg, const struct dns_ptr_result *r)
{
	struct got_ptr *g = arg;

	g->count++;
	g->r = *r;
}

static void
test_txt_joined(void **state)
{
	struct env e;
	struct got_txt g = { 0 };

	(void)state;
	env_open(&e, fake.port, 5000);
	dns_txt(e.dns, "TXT.example.", txt_cb, &g);
	assert_int_equal(g.count, 0);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.n, 2);
	/* Character-strings of one record are joined without a space (RFC 7208 3.3). */
	assert_true((strcmp(g.recs[0], "v=spf1 -all") == 0 && strcmp(g.recs[1], "second") == 0) ||
	    (strcmp(g.recs[1], "v=spf1 -all") == 0 && strcmp(g.recs[0], "second") == 0));

	memset(&g, 0, sizeof(g));
	dns_txt(e.dns, "host.example", txt_cb, &g);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.status, DNS_NODATA);
	assert_int_equal(g.n, 0);

	memset(&g, 0, sizeof(g));
	dns_txt(e.dns, "_dmarc.none.example", txt_cb, &g);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.status, DNS_NXDOMAIN);

	memset(&g, 0, sizeof(g));
	dns_txt(e.dns, "bad name!", txt_cb, &g);
	assert_int_equal(g.count, 0);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.status, DNS_NXDOMAIN);
	env_close(&e);
}

static void
test_ptr_v4_v6(void **state)
{
	struct env e;
	struct got_ptr g = { 0 };

	(void)state;
	env_open(&e, fake.port, 5000);
	/* Not 192.0.2/24 or 2001:db8::/32: libunbound answers those reverse zones itself. */
	dns_ptr(e.dns, "198.18.0.2", ptr_cb, &g);
	assert_int_equal(g.count, 0);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.r.status, DNS_OK);
	assert_int_equal(g.r.n, 1);
	assert_string_equal(g.r.names[0], "mail.host.example");

	memset(&g, 0, sizeof(g));
	dns_ptr(e.dns, "3fff::1", ptr_cb, &g);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.r.status, DNS_OK);
	assert_string_equal(g.r.names[0], "v6.host.example");

	memset(&g, 0, sizeof(g));
	dns_ptr(e.dns, "198.18.0.99", ptr_cb, &g);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.r.status, DNS_NXDOMAIN);

	memset(&g, 0, sizeof(g));
	dns_ptr(e.dns, "not-an-ip", ptr_cb, &g);
	assert_int_equal(g.count, 0);
	assert_true(run_until(e.base, &g.count, 1, 10000));
	assert_int_equal(g.r.status, DNS_NXDOMAIN);
	env_close(&e);
}

static void
test_reverse_name(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(dns_reverse_name("192.0.2.1", "zen.example", out, sizeof(out)), 0);
	assert_string_equal(out, "1.2.0.192.zen.example");
	assert_int_equal(dns_reverse_name("2001:db8::2", "ip6.arpa", out, sizeof(out)), 0);
	assert_string_equal(out,
	    "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(dns_reverse_name("192.0.2", "x", out, sizeof(out)), -1);
	assert_int_equal(dns_reverse_name("192.0.2.1", "zen.example", out, 10), -1);
}

/* ---- failures ---- */

static void
test_servfail_is_tempfail(void **state)
{
	struct env e;
	struct got_mx g;
	struct got_addr ga;

	(void)state;
	env_open(&e, fake.port, 5000);
	lookup_mx(&e, "broken.example", &g);
	assert_int_equal(g.r.status, DNS_TEMPFAIL);
	assert_non_null(strstr(g.r.why, "SERVFAIL"));
	lookup_addrs(&e, "broken.example", &ga);
	assert_int_equal(ga.r.status, DNS_TEMPFAIL);
	env_close(&e);
}

static void
test_silent_server_times_out(void **state)
{
	struct env e;
	struct got_mx g;
	struct got_addr ga;
	uint64_t t0, took;

	(void)state;
	env_open(&e, fake.silent_port, 300);
	t0 = clock_mono_ms();
	lookup_mx(&e, "mx.example", &g);
	took = clock_mono_ms() - t0;
	assert_int_equal(g.r.status, DNS_TEMPFAIL);
	assert_string_equal(g.r.why, "no answer within 300 ms");
	assert_true(took >= 290 && took < 5000);
	lookup_addrs(&e, "host.example", &ga);
	assert_int_equal(ga.r.status, DNS_TEMPFAIL);
	assert_non_null(strstr(ga.r.why, "no answer within 300 ms"));
	env_close(&e);
}

static void
test_dropped_query_times_out(void **state)
{
	struct env e;
	struct got_mx g;

	(void)state;
	/* The fake server ignores this name while answering others. */
	env_open(&e, fake.port, 300);
	lookup_mx(&e, "slow.example", &g);
	assert_int_equal(g.r.status, DNS_TEMPFAIL);
	lookup_mx(&e, "mx.example", &g);
	assert_int_equal(g.r.status, DNS_OK);
	env_close(&e);
}

static void
test_free_with_queries_outstanding(void **state)
{
	struct env e;
	struct got_mx g1 = { 0 }, g2 = { 0 };
	struct got_addr g3 = { 0 };
	struct got_tlsa g4 = { 0 };
	struct event_base *base;

	(void)state;
	env_open(&e, fake.silent_port, 200);
	dns_mx(e.dns, "mx.example", mx_cb, &g1);
	dns_mx(e.dns, "bad name", mx_cb, &g2); /* already finished, not yet reported */
	dns_addrs(e.dns, "host.example", addr_cb, &g3);
	dns_tlsa(e.dns, "mx1.example", 25, tlsa_cb, &g4);
	dns_free(e.dns);
	base = e.base;
	/* Longer than the timeout: nothing may run after dns_free(). */
	assert_false(run_until(base, &g1.count, 1, 500));
	assert_int_equal(g1.count + g2.count + g3.count + g4.count, 0);
	event_base_free(base);
}

struct free_in_cb {
	struct dns *dns;
	int count;
	struct got_mx other;
};

static void
free_in_cb(void *arg, const struct dns_mx_result *r)
{
	struct free_in_cb *f = arg;

	(void)r;
	f->count++;
	dns_free(f->dns);
	f->dns = NULL;
}

static void
test_free_inside_callback(void **state)
{
	struct env e;
	struct free_in_cb f = { 0 };

	(void)state;
	env_open(&e, fake.port, 300);
	f.dns = e.dns;
	dns_mx(e.dns, "slow.example", mx_cb, &f.other); /* still waiting when f's answer comes */
	dns_mx(e.dns, "mx.example", free_in_cb, &f);
	assert_true(run_until(e.base, &f.count, 1, 10000));
	assert_null(f.dns);
	assert_false(run_until(e.base, &f.other.count, 1, 600));
	event_base_free(e.base);
}

/* A trust anchor for example. that the unsigned fake zone cannot satisfy: every answer is bogus. */
static void
test_dnssec_bogus(void **state)
{
	static const char anchor[] = "example. IN DS 12345 13 2 "
	    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n";
	struct event_base *base = event_base_new();
	const char *fwd[2] = { NULL, NULL };
	struct dns_params p = { .forward = fwd, .timeout_ms = 5000 };
	struct hk_err err = { 0 };
	struct got_mx g = { 0 };
	struct got_addr ga = { 0 };
	struct got_tlsa gt = { 0 };
	char path[160], fwd_text[64];
	struct dns *dns;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/anchor", fake.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(anchor, f);
	assert_int_equal(fclose(f), 0);
	snprintf(fwd_text, sizeof(fwd_text), "127.0.0.1@%u", fake.port);
	fwd[0] = fwd_text;
	p.trust_anchor = path;
	dns = dns_new(base, &p, &err);
	if (dns == NULL)
		fail_msg("dns_new: %s", err.text);
	dns_mx(dns, "mx.example", mx_cb, &g);
	dns_addrs(dns, "host.example", addr_cb, &ga);
	dns_tlsa(dns, "mx1.example", 25, tlsa_cb, &gt);
	assert_true(run_until(base, &g.count, 1, 10000));
	assert_true(run_until(base, &ga.count, 1, 10000));
	assert_true(run_until(base, &gt.count, 1, 10000));
	assert_int_equal(g.r.status, DNS_BOGUS);
	assert_non_null(strstr(g.r.why, "DNSSEC validation failed"));
	assert_int_equal(g.r.n, 0);
	assert_int_equal(ga.r.status, DNS_BOGUS);
	assert_int_equal(ga.r.n, 0);
	assert_int_equal(gt.r.status, DNS_BOGUS);
	assert_false(gt.r.secure);
	dns_free(dns);
	unlink(path);
	event_base_free(base);
}

static void
test_new_rejects_bad_forwarder(void **state)
{
	struct event_base *base = event_base_new();
	const char *const fwd[] = { "not-an-address", NULL };
	struct dns_params p = { .forward = fwd };
	struct hk_err err = { 0 };

	(void)state;
	assert_null(dns_new(base, &p, &err));
	assert_int_equal(err.code, HK_E_CONFIG);
	assert_non_null(strstr(err.text, "not-an-address"));
	p.forward = NULL;
	p.resolv_conf = "/nonexistent/resolv.conf";
	assert_null(dns_new(base, &p, &err));
	assert_non_null(strstr(err.text, "/nonexistent/resolv.conf"));
	event_base_free(base);
}

/* ---- configuration ---- */

static struct conf *
conf_of(const char *dns_section)
{
	char yaml[1024];
	struct conf_diag d;
	struct conf *c = NULL;

	snprintf(yaml, sizeof(yaml),
	    "listen:\n  - address: 127.0.0.1:25\nupstreams: []\n"
	    "routes:\n  - name: default\n    mx: true\n%s", dns_section);
	conf_diag_init(&d);
	if (conf_load_string("t.yaml", yaml, strlen(yaml), false, &c, &d) != 0)
		fail_msg("diagnostics:\n%s", d.text.ptr);
	conf_diag_fini(&d);
	return c;
}

static void
test_conf_section(void **state)
{
	struct conf *c;
	struct dns_params p;

	(void)state;
	c = conf_of("");
	assert_int_equal(c->n_dns_forward, 0);
	assert_null(c->dns_forward);
	assert_string_equal(c->dns_resolv_conf, "/etc/resolv.conf");
	assert_false(c->dns_dnssec);
	assert_string_equal(c->dns_trust_anchor, "/usr/share/dns/root.key");
	assert_int_equal(c->dns_timeout_ms, 10000);
	dns_params_from_conf(&p, c);
	assert_null(p.forward);
	assert_null(p.trust_anchor);
	assert_string_equal(p.resolv_conf, "/etc/resolv.conf");
	conf_unref(c);

	c = conf_of("dns: { forward: [\"127.0.0.1@5353\", \"::1\"], dnssec: true, "
	    "trust_anchor: /x/root.key, timeout: 2s }\n");
	assert_int_equal(c->n_dns_forward, 2);
	assert_string_equal(c->dns_forward[0], "127.0.0.1@5353");
	assert_string_equal(c->dns_forward[1], "::1");
	assert_null(c->dns_forward[2]);
	dns_params_from_conf(&p, c);
	assert_string_equal(p.forward[1], "::1");
	assert_null(p.forward[2]);
	assert_string_equal(p.trust_anchor, "/x/root.key");
	assert_int_equal(p.timeout_ms, 2000);
	conf_unref(c);
}

static void
test_conf_checks_files_in_use(void **state)
{
	static const char yaml[] =
	    "listen:\n  - address: 127.0.0.1:25\nupstreams: []\n"
	    "routes:\n  - name: default\n    mx: true\n"
	    "dns: { dnssec: true, trust_anchor: /nonexistent/root.key }\n";
	struct conf_diag d;
	struct conf *c = NULL;

	(void)state;
	conf_diag_init(&d);
	assert_int_equal(conf_load_string("t.yaml", yaml, strlen(yaml), true, &c, &d), -1);
	assert_null(c);
	assert_non_null(strstr(d.text.ptr,
	    "t.yaml:7:36: dns.trust_anchor: cannot read \"/nonexistent/root.key\""));
	conf_diag_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_names),
		cmocka_unit_test(test_wire_answers),
		cmocka_unit_test(test_mx_sorted_by_preference),
		cmocka_unit_test(test_mx_equal_preferences_shuffled),
		cmocka_unit_test(test_mx_capped_best_first),
		cmocka_unit_test(test_mx_none_is_implicit),
		cmocka_unit_test(test_mx_nxdomain),
		cmocka_unit_test(test_mx_null),
		cmocka_unit_test(test_mx_invalid_name),
		cmocka_unit_test(test_addrs_merged_v6_first),
		cmocka_unit_test(test_addrs_one_family),
		cmocka_unit_test(test_addrs_nodata_nxdomain),
		cmocka_unit_test(test_addrs_literal_without_query),
		cmocka_unit_test(test_tlsa_parsed),
		cmocka_unit_test(test_txt_joined),
		cmocka_unit_test(test_ptr_v4_v6),
		cmocka_unit_test(test_reverse_name),
		cmocka_unit_test(test_servfail_is_tempfail),
		cmocka_unit_test(test_silent_server_times_out),
		cmocka_unit_test(test_dropped_query_times_out),
		cmocka_unit_test(test_free_with_queries_outstanding),
		cmocka_unit_test(test_free_inside_callback),
		cmocka_unit_test(test_dnssec_bogus),
		cmocka_unit_test(test_new_rejects_bad_forwarder),
		cmocka_unit_test(test_conf_section),
		cmocka_unit_test(test_conf_checks_files_in_use),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
