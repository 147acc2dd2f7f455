/*
 * dns.c - asynchronous DNS through libunbound, driven by libevent.
 *
 * libunbound resolves on its own thread (ub_ctx_async(ctx, 1)) and signals answers on ub_fd();
 * a persistent EV_READ event calls ub_process(), which runs dns_ub_cb() on the loop. Every
 * query also has a timer (libunbound has no per-query timeout) and a "done" event: a finished
 * query is reported by activating that event, so the caller's callback always runs from the
 * loop, never inside dns_mx()/dns_addrs()/dns_tlsa() and never inside ub_process().
 *
 * Answers are read from ub_result->answer_packet, whose names may be compressed, with every
 * offset checked; ub_result->data (uncompressed rdata) is the fallback when there is no packet.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound.h>

#include "../conf/conf.h"
#include "../util/clock.h"
#include "../util/buf.h"
#include "../util/log.h"
#include "../util/xalloc.h"
#include "dns.h"
#include "dns_wire.h"
#include "../util/poison.h"

#define DNS_TYPE_A 1
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_TLSA 52
#define DNS_TYPE_TXT 16
#define DNS_TYPE_PTR 12
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_REFUSED 5
#define DNS_TIMEOUT_DEFAULT_MS 10000
/* MX records considered before the best DNS_MAX_RESULTS are kept. */
#define DNS_MX_COLLECT 256

enum dns_kind { DNS_KIND_MX, DNS_KIND_ADDR, DNS_KIND_TLSA, DNS_KIND_TXT, DNS_KIND_PTR };

struct dns_query;

/* One libunbound lookup; an address query runs two (AAAA and A). */
struct dns_sub {
	struct dns_query *q;
	int rrtype;
	int ub_id;
	bool live; /* libunbound may still call back: cancel it if we stop waiting */
	bool done;
	enum dns_status status;
	bool secure;
	char why[128];
	size_t n; /* addresses (A/AAAA subs) */
	struct sockaddr_storage addrs[DNS_MAX_RESULTS];
};

struct dns_query {
	struct dns *d;
	struct dns_query *prev, *next; /* outstanding queries of d */
	enum dns_kind kind;
	char name[DNS_NAME_MAX]; /* as asked, lower case, no trailing dot */
	struct dns_sub sub[2];
	size_t n_sub;
	bool finished;
	struct event *timer, *done_ev;
	union {
		dns_mx_fn mx;
		dns_addr_fn addr;
		dns_tlsa_fn tlsa;
		dns_txt_fn txt;
		dns_ptr_fn ptr;
	} cb;
	char *txt_mem; /* TXT: the joined strings r.txt.recs[] point into */
	void *arg;
	union {
		struct dns_mx_result mx;
		struct dns_addr_result addr;
		struct dns_tlsa_result tlsa;
		struct dns_txt_result txt;
		struct dns_ptr_result ptr;
	} r;
};

struct dns {
	struct event_base *base;
	struct ub_ctx *ctx;
	struct event *ev_fd;
	uint64_t timeout_ms;
	uint64_t rng; /* splitmix64 state: shuffles equal MX preferences */
	struct dns_query *head;
};

const char *
dns_status_name(enum dns_status s)
{
	static const char *const names[] = {
		[DNS_OK] = "ok", [DNS_NXDOMAIN] = "nxdomain", [DNS_NODATA] = "nodata",
		[DNS_TEMPFAIL] = "tempfail", [DNS_BOGUS] = "bogus", [DNS_NULL_MX] = "null_mx",
	};

	if ((size_t)s >= HK_ARRAY_LEN(names) || names[s] == NULL)
		return "unknown";
	return names[s];
}

static uint64_t
dns_rand(struct dns *d)
{
	uint64_t z = (d->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Copy text into a why[] field, cut to fit (it is a summary for logs) and with control bytes
 * replaced, so it can be logged as is.
 */
static void
dns_why(char *why, size_t size, const char *text)
{
	size_t n = strnlen(text, size - 1), i;

	memcpy(why, text, n);
	why[n] = '\0';
	for (i = 0; i < n; i++) {
		if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f)
			why[i] = '?';
	}
}

/*
 * Check and normalise a name to look up: LDH labels (plus "_" for service labels) of 1..63
 * bytes, 1..253 bytes in all, one optional trailing dot. out gets it lower case, dot removed.
 */
static bool
dns_name_normalise(const char *name, char *out, size_t size)
{
	size_t n = strlen(name), i, label = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_WIRE_HOST_MAX || n >= size)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!dns_wire_is_label_char(c) || ++label > 63) {
			return false;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[n] = '\0';
	return label > 0;
}

/* ---- answers ---- */

/* The answer records of one type, from the packet or else from ub_result->data. */
struct dns_answers {
	const struct ub_result *res;
	unsigned rrtype;
	bool from_pkt;
	struct dns_wire_answers w; /* packet */
	size_t i;                  /* data[]: next index */
};

static void
dns_answers_init(struct dns_answers *a, const struct ub_result *res, unsigned rrtype)
{
	memset(a, 0, sizeof(*a));
	a->res = res;
	a->rrtype = rrtype;
	a->from_pkt = res->answer_packet != NULL && res->answer_len > 0 &&
	    dns_wire_answers_open(&a->w, res->answer_packet, (size_t)res->answer_len) == 0;
}

static bool
dns_answers_next(struct dns_answers *a, struct dns_rdata *rd)
{
	const struct ub_result *res = a->res;

	if (a->from_pkt)
		return dns_wire_answers_next(&a->w, a->rrtype, rd);
	/* data[] holds uncompressed rdata of the asked type only. */
	if (res->data == NULL || res->len == NULL || res->qtype != (int)a->rrtype)
		return false;
	while (res->data[a->i] != NULL) {
		size_t i = a->i++;

		if (res->len[i] < 0)
			continue;
		*rd = (struct dns_rdata){ .p = (const uint8_t *)res->data[i],
			.p_len = (size_t)res->len[i], .off = 0, .len = (size_t)res->len[i] };
		return true;
	}
	return false;
}

/*
 * The status of an answer, with a loggable reason in why. DNS_OK means records are present.
 */
static enum dns_status
dns_classify(int err, const struct ub_result *res, char *why, size_t size)
{
	char text[160];

	if (err != 0 || res == NULL) {
		snprintf(text, sizeof(text), "resolver error: %s", ub_strerror(err));
		dns_why(why, size, text);
		return DNS_TEMPFAIL;
	}
	if (res->bogus) {
		snprintf(text, sizeof(text), "DNSSEC validation failed: %s",
		    res->why_bogus != NULL ? res->why_bogus : "bogus answer");
		dns_why(why, size, text);
		return DNS_BOGUS;
	}
	if (res->nxdomain || res->rcode == DNS_RCODE_NXDOMAIN) {
		dns_why(why, size, "no such domain (NXDOMAIN)");
		return DNS_NXDOMAIN;
	}
	if (res->rcode != 0) {
		snprintf(text, sizeof(text), "server answered %s (rcode %d)",
		    res->rcode == DNS_RCODE_SERVFAIL ? "SERVFAIL" :
		    res->rcode == DNS_RCODE_REFUSED ? "REFUSED" : "an error", res->rcode);
		dns_why(why, size, text);
		return DNS_TEMPFAIL;
	}
	if (!res->havedata) {
		dns_why(why, size, "no records of this type (NODATA)");
		return DNS_NODATA;
	}
	return DNS_OK;
}

/* ---- per-kind answers ---- */

/* Equal preferences in random order (RFC 5321 5.1), then by preference, best first. */
static void
dns_mx_order(struct dns *d, struct dns_mx_host *h, size_t n)
{
	size_t i, j;

	for (i = n; i > 1; i--) {
		struct dns_mx_host t;

		j = (size_t)(dns_rand(d) % i);
		t = h[i - 1];
		h[i - 1] = h[j];
		h[j] = t;
	}
	/* Insertion sort is stable, so the shuffle survives among equal preferences. */
	for (i = 1; i < n; i++) {
		struct dns_mx_host t = h[i];

		for (j = i; j > 0 && h[j - 1].pref > t.pref; j--)
			h[j] = h[j - 1];
		h[j] = t;
	}
}

static void
dns_mx_answer(struct dns_query *q, int err, const struct ub_result *res)
{
	struct dns_mx_result *r = &q->r.mx;
	struct dns_mx_host *cand;
	struct dns_answers a;
	struct dns_rdata rd;
	size_t n = 0, n_root = 0, n_bad = 0, i;

	r->status = dns_classify(err, res, r->why, sizeof(r->why));
	r->secure = res != NULL && res->secure;
	if (r->status == DNS_NODATA) {
		/* RFC 5321 5.1: no MX records, so the domain itself is the implicit MX. */
		r->status = DNS_OK;
		r->implicit = true;
		r->n = 1;
		r->hosts[0].pref = 0;
		memcpy(r->hosts[0].name, q->name, sizeof(r->hosts[0].name));
		r->why[0] = '\0';
		return;
	}
	if (r->status != DNS_OK)
		return;
	cand = xcalloc(DNS_MX_COLLECT, sizeof(*cand));
	dns_answers_init(&a, res, DNS_TYPE_MX);
	while (n < DNS_MX_COLLECT && dns_answers_next(&a, &rd)) {
		if (rd.len < 3 || dns_wire_name(rd.p, rd.ptr_ok ? rd.p_len : rd.off + rd.len,
		    rd.off + 2, rd.ptr_ok, cand[n].name, sizeof(cand[n].name)) == -1) {
			n_bad++;
			continue;
		}
		cand[n].pref = dns_wire_be16(rd.p + rd.off);
		/* RFC 7505 3: "." is no host; only a lone null MX has a meaning. */
		if (strcmp(cand[n].name, ".") == 0) {
			n_root++;
			continue;
		}
		n++;
	}
	if (n == 0 && n_root > 0) {
		r->status = DNS_NULL_MX;
		dns_why(r->why, sizeof(r->why), "null MX: the domain accepts no mail (RFC 7505)");
	} else if (n == 0) {
		r->status = DNS_TEMPFAIL;
		snprintf(r->why, sizeof(r->why), "MX answer without a usable host (%zu malformed)",
		    n_bad);
	} else {
		dns_mx_order(q->d, cand, n);
		r->n = n < DNS_MAX_RESULTS ? n : DNS_MAX_RESULTS;
		for (i = 0; i < r->n; i++)
			r->hosts[i] = cand[i];
		if (n_root > 0 || n_bad > 0)
			log_info("dns", "mx_skipped", "domain=%s root=%zu malformed=%zu",
			    log_q(q->name), n_root, n_bad);
	}
	free(cand);
}

static void
dns_addr_answer(struct dns_sub *s, int err, const struct ub_result *res)
{
	struct dns_answers a;
	struct dns_rdata rd;

	s->status = dns_classify(err, res, s->why, sizeof(s->why));
	s->secure = res != NULL && res->secure;
	if (s->status != DNS_OK)
		return;
	dns_answers_init(&a, res, (unsigned)s->rrtype);
	while (s->n < DNS_MAX_RESULTS && dns_answers_next(&a, &rd)) {
		struct sockaddr_storage *ss = &s->addrs[s->n];

		memset(ss, 0, sizeof(*ss));
		if (s->rrtype == DNS_TYPE_A && rd.len == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)ss;

			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, rd.p + rd.off, 4);
			s->n++;
		} else if (s->rrtype == DNS_TYPE_AAAA && rd.len == 16) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, rd.p + rd.off, 16);
			s->n++;
		}
	}
	if (s->n == 0) {
		s->status = DNS_TEMPFAIL;
		dns_why(s->why, sizeof(s->why), "address answer without a usable record");
	}
}

static void
dns_tlsa_answer(struct dns_query *q, int err, const struct ub_result *res)
{
	struct dns_tlsa_result *r = &q->r.tlsa;
	struct dns_answers a;
	struct dns_rdata rd;
	size_t skipped = 0;

	r->status = dns_classify(err, res, r->why, sizeof(r->why));
	r->secure = res != NULL && res->secure;
	if (r->status != DNS_OK)
		return;
	dns_answers_init(&a, res, DNS_TYPE_TLSA);
	while (dns_answers_next(&a, &rd)) {
		struct dns_tlsa_record *t = &r->recs[r->n];

		/* RFC 6698 2.1: usage, selector, matching type, then the association data. */
		if (r->n == HK_ARRAY_LEN(r->recs) || rd.len < 4 || rd.len - 3 > sizeof(t->data)) {
			skipped++;
			continue;
		}
		t->usage = rd.p[rd.off];
		t->selector = rd.p[rd.off + 1];
		t->mtype = rd.p[rd.off + 2];
		t->len = rd.len - 3;
		memcpy(t->data, rd.p + rd.off + 3, t->len);
		r->n++;
	}
	if (skipped > 0)
		snprintf(r->why, sizeof(r->why), "%zu TLSA records skipped (too long or too many)",
		    skipped);
}

/*
 * TXT: RFC 1035 3.3.14, one or more <character-string>s (a length byte, then that many bytes),
 * joined without separator (RFC 7208 3.3). Every record is copied into one block, q->txt_mem.
 */
static void
dns_txt_answer(struct dns_query *q, int err, const struct ub_result *res)
{
	struct dns_txt_result *r = &q->r.txt;
	struct dns_answers a;
	struct dns_rdata rd;
	size_t total = 0, used = 0, bad = 0, i;
	size_t offs[DNS_TXT_MAX];

	r->status = dns_classify(err, res, r->why, sizeof(r->why));
	r->secure = res != NULL && res->secure;
	if (r->status != DNS_OK)
		return;
	dns_answers_init(&a, res, DNS_TYPE_TXT);
	while (dns_answers_next(&a, &rd))
		total += rd.len + 1;
	q->txt_mem = xmalloc(total + 1);
	dns_answers_init(&a, res, DNS_TYPE_TXT);
	while (r->n < DNS_TXT_MAX && dns_answers_next(&a, &rd)) {
		const uint8_t *p = rd.p + rd.off;
		size_t o = 0, start = used;

		while (o < rd.len && o + 1 + p[o] <= rd.len) {
			memcpy(q->txt_mem + used, p + o + 1, p[o]);
			used += p[o];
			o += 1 + (size_t)p[o];
		}
		if (o != rd.len) {
			used = start;
			bad++;
			continue;
		}
		q->txt_mem[used++] = '\0';
		offs[r->n] = start;
		r->lens[r->n] = used - 1 - start;
		r->n++;
	}
	for (i = 0; i < r->n; i++)
		r->recs[i] = q->txt_mem + offs[i];
	if (bad > 0)
		snprintf(r->why, sizeof(r->why), "%zu malformed TXT records skipped", bad);
	if (r->n == 0) {
		r->status = DNS_TEMPFAIL;
		dns_why(r->why, sizeof(r->why), "TXT answer without a usable record");
	}
}

static void
dns_ptr_answer(struct dns_query *q, int err, const struct ub_result *res)
{
	struct dns_ptr_result *r = &q->r.ptr;
	struct dns_answers a;
	struct dns_rdata rd;

	r->status = dns_classify(err, res, r->why, sizeof(r->why));
	r->secure = res != NULL && res->secure;
	if (r->status != DNS_OK)
		return;
	dns_answers_init(&a, res, DNS_TYPE_PTR);
	while (r->n < DNS_PTR_MAX && dns_answers_next(&a, &rd)) {
		if (dns_wire_name(rd.p, rd.ptr_ok ? rd.p_len : rd.off + rd.len, rd.off, rd.ptr_ok,
		    r->names[r->n], sizeof(r->names[r->n])) == 0)
			r->n++;
	}
	if (r->n == 0) {
		r->status = DNS_TEMPFAIL;
		dns_why(r->why, sizeof(r->why), "PTR answer without a usable host name");
	}
}

/* ---- query life ---- */

static void
dns_sockaddr_len(const struct sockaddr_storage *ss, socklen_t *len)
{
	*len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

/* RFC 6724 prefers IPv6; each family keeps at least half of the slots if it has that many. */
static void
dns_addr_merge(struct dns_query *q)
{
	struct dns_addr_result *r = &q->r.addr;
	const struct dns_sub *s6 = &q->sub[0], *s4 = &q->sub[1];
	size_t half = DNS_MAX_RESULTS / 2, n6, n4, i;

	HK_ASSERT(s6->rrtype == DNS_TYPE_AAAA && s4->rrtype == DNS_TYPE_A);
	n6 = s6->n;
	if (n6 > half && n6 + s4->n > DNS_MAX_RESULTS)
		n6 = DNS_MAX_RESULTS - (s4->n < half ? s4->n : half);
	n4 = s4->n < DNS_MAX_RESULTS - n6 ? s4->n : DNS_MAX_RESULTS - n6;
	r->n = 0;
	for (i = 0; i < n6; i++)
		r->addrs[r->n++] = s6->addrs[i];
	for (i = 0; i < n4; i++)
		r->addrs[r->n++] = s4->addrs[i];
	for (i = 0; i < r->n; i++)
		dns_sockaddr_len(&r->addrs[i], &r->lens[i]);
	r->secure = s6->secure && s4->secure;
	if (r->n > 0) {
		r->status = DNS_OK;
		return;
	}
	/* Nothing usable: the most telling failure wins. NXDOMAIN covers every type of a name. */
	if (s6->status == DNS_NXDOMAIN || s4->status == DNS_NXDOMAIN)
		r->status = DNS_NXDOMAIN;
	else if (s6->status == DNS_BOGUS || s4->status == DNS_BOGUS)
		r->status = DNS_BOGUS;
	else if (s6->status == DNS_TEMPFAIL || s4->status == DNS_TEMPFAIL)
		r->status = DNS_TEMPFAIL;
	else
		r->status = DNS_NODATA;
	snprintf(r->why, sizeof(r->why), "AAAA: %.58s; A: %.58s",
	    s6->why[0] ? s6->why : dns_status_name(s6->status),
	    s4->why[0] ? s4->why : dns_status_name(s4->status));
}

/* Stop waiting and report on the next loop pass. */
static void
dns_query_finish(struct dns_query *q)
{
	size_t i;

	HK_ASSERT(!q->finished);
	q->finished = true;
	evtimer_del(q->timer);
	for (i = 0; i < q->n_sub; i++) {
		if (q->sub[i].live) {
			(void)ub_cancel(q->d->ctx, q->sub[i].ub_id);
			q->sub[i].live = false;
		}
	}
	if (q->kind == DNS_KIND_ADDR)
		dns_addr_merge(q);
	if (q->kind == DNS_KIND_MX && q->r.mx.status == DNS_BOGUS)
		log_warn("dns", "dnssec_bogus", "name=%s type=MX why=%s", log_q(q->name),
		    log_q(q->r.mx.why));
	event_active(q->done_ev, EV_TIMEOUT, 0);
}

static void
dns_query_check(struct dns_query *q)
{
	size_t i;

	if (q->finished)
		return;
	for (i = 0; i < q->n_sub; i++) {
		if (!q->sub[i].done)
			return;
	}
	dns_query_finish(q);
}

/* Record the answer (or error) of one sub-query. */
static void
dns_sub_answer(struct dns_sub *s, int err, const struct ub_result *res)
{
	struct dns_query *q = s->q;

	s->live = false;
	if (s->done || q->finished)
		return;
	s->done = true;
	if (q->kind == DNS_KIND_MX)
		dns_mx_answer(q, err, res);
	else if (q->kind == DNS_KIND_TLSA)
		dns_tlsa_answer(q, err, res);
	else if (q->kind == DNS_KIND_TXT)
		dns_txt_answer(q, err, res);
	else if (q->kind == DNS_KIND_PTR)
		dns_ptr_answer(q, err, res);
	else
		dns_addr_answer(s, err, res);
}

static void
dns_ub_cb(void *mydata, int err, struct ub_result *res)
{
	struct dns_sub *s = mydata;

	dns_sub_answer(s, err, res);
	if (res != NULL)
		ub_resolve_free(res);
	dns_query_check(s->q);
}

static void
dns_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	char why[128];
	size_t i;

	(void)fd;
	(void)what;
	snprintf(why, sizeof(why), "no answer within %llu ms",
	    (unsigned long long)q->d->timeout_ms);
	for (i = 0; i < q->n_sub; i++) {
		struct dns_sub *s = &q->sub[i];

		if (s->done)
			continue;
		s->done = true;
		s->status = DNS_TEMPFAIL;
		dns_why(s->why, sizeof(s->why), why);
		if (q->kind == DNS_KIND_MX) {
			q->r.mx.status = DNS_TEMPFAIL;
			dns_why(q->r.mx.why, sizeof(q->r.mx.why), why);
		} else if (q->kind == DNS_KIND_TLSA) {
			q->r.tlsa.status = DNS_TEMPFAIL;
			dns_why(q->r.tlsa.why, sizeof(q->r.tlsa.why), why);
		} else if (q->kind == DNS_KIND_TXT) {
			q->r.txt.status = DNS_TEMPFAIL;
			dns_why(q->r.txt.why, sizeof(q->r.txt.why), why);
		} else if (q->kind == DNS_KIND_PTR) {
			q->r.ptr.status = DNS_TEMPFAIL;
			dns_why(q->r.ptr.why, sizeof(q->r.ptr.why), why);
		}
	}
	dns_query_finish(q);
}

static void
dns_query_unlink(struct dns_query *q)
{
	struct dns *d = q->d;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		d->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void
dns_query_free(struct dns_query *q)
{
	event_free(q->timer);
	event_free(q->done_ev);
	free(q->txt_mem);
	free(q);
}

static void
dns_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	/* Unlinked first: the callback may free the resolver or start new queries. */
	dns_query_unlink(q);
	switch (q->kind) {
	case DNS_KIND_MX:
		q->cb.mx(q->arg, &q->r.mx);
		break;
	case DNS_KIND_ADDR:
		q->cb.addr(q->arg, &q->r.addr);
		break;
	case DNS_KIND_TLSA:
		q->cb.tlsa(q->arg, &q->r.tlsa);
		break;
	case DNS_KIND_TXT:
		q->cb.txt(q->arg, &q->r.txt);
		break;
	case DNS_KIND_PTR:
		q->cb.ptr(q->arg, &q->r.ptr);
		break;
	}
	dns_query_free(q);
}

static struct dns_query *
dns_query_new(struct dns *d, enum dns_kind kind, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	struct timeval tv;

	q->d = d;
	q->kind = kind;
	q->arg = arg;
	q->timer = evtimer_new(d->base, dns_timeout_cb, q);
	q->done_ev = event_new(d->base, -1, 0, dns_done_cb, q);
	HK_ASSERT(q->timer != NULL && q->done_ev != NULL);
	tv.tv_sec = (time_t)(d->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(d->timeout_ms % 1000 * 1000);
	evtimer_add(q->timer, &tv);
	q->next = d->head;
	if (d->head != NULL)
		d->head->prev = q;
	d->head = q;
	return q;
}

/*
 * Start sub-query i (its rrtype set, q->n_sub covering it). A start that fails is recorded as a
 * temporary failure; the caller runs dns_query_check() once every sub-query is started.
 */
static void
dns_sub_start(struct dns_query *q, size_t i)
{
	struct dns_sub *s = &q->sub[i];
	int rc;

	HK_ASSERT(i < q->n_sub);
	s->live = true;
	rc = ub_resolve_async(q->d->ctx, q->name, s->rrtype, DNS_WIRE_CLASS_IN, s, dns_ub_cb,
	    &s->ub_id);
	if (rc != 0)
		dns_sub_answer(s, rc, NULL);
}

static struct dns_query *
dns_query_start(struct dns *d, enum dns_kind kind, void *arg, const int *rrtypes, size_t n)
{
	struct dns_query *q = dns_query_new(d, kind, arg);
	size_t i;

	HK_ASSERT(n <= HK_ARRAY_LEN(q->sub));
	q->n_sub = n;
	for (i = 0; i < n; i++) {
		q->sub[i].q = q;
		q->sub[i].rrtype = rrtypes[i];
	}
	return q;
}

/* A name that cannot be looked up: a permanent answer, reported on the next loop pass. */
static void
dns_query_invalid(struct dns_query *q, char *why, size_t size, enum dns_status *status)
{
	size_t i;

	for (i = 0; i < q->n_sub; i++) {
		q->sub[i].done = true;
		q->sub[i].status = DNS_NXDOMAIN;
		dns_why(q->sub[i].why, sizeof(q->sub[i].why), "not a valid domain name");
	}
	dns_query_finish(q);
	*status = DNS_NXDOMAIN;
	dns_why(why, size, "not a valid domain name");
}

/* ---- the API ---- */

void
dns_mx(struct dns *d, const char *domain, dns_mx_fn cb, void *arg)
{
	static const int types[] = { DNS_TYPE_MX };
	struct dns_query *q;

	HK_ASSERT_LOOP();
	q = dns_query_start(d, DNS_KIND_MX, arg, types, HK_ARRAY_LEN(types));
	q->cb.mx = cb;
	if (!dns_name_normalise(domain, q->name, sizeof(q->name))) {
		dns_query_invalid(q, q->r.mx.why, sizeof(q->r.mx.why), &q->r.mx.status);
		return;
	}
	dns_sub_start(q, 0);
	dns_query_check(q);
}

void
dns_addrs(struct dns *d, const char *host, dns_addr_fn cb, void *arg)
{
	/* dns_addr_merge() expects this order. */
	static const int types[] = { DNS_TYPE_AAAA, DNS_TYPE_A };
	struct dns_query *q;
	struct dns_addr_result *r;

	HK_ASSERT_LOOP();
	q = dns_query_start(d, DNS_KIND_ADDR, arg, types, HK_ARRAY_LEN(types));
	q->cb.addr = cb;
	r = &q->r.addr;
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&q->sub[0].addrs[0])->sin6_addr) ==
	    1) {
		q->sub[0].addrs[0].ss_family = AF_INET6;
		q->sub[0].n = 1;
	} else if (inet_pton(AF_INET, host,
	    &((struct sockaddr_in *)&q->sub[1].addrs[0])->sin_addr) == 1) {
		q->sub[1].addrs[0].ss_family = AF_INET;
		q->sub[1].n = 1;
	}
	if (q->sub[0].n + q->sub[1].n > 0) {
		q->sub[0].done = q->sub[1].done = true;
		dns_query_finish(q);
		return;
	}
	if (!dns_name_normalise(host, q->name, sizeof(q->name))) {
		dns_query_invalid(q, r->why, sizeof(r->why), &r->status);
		return;
	}
	dns_sub_start(q, 0);
	dns_sub_start(q, 1);
	dns_query_check(q);
}

void
dns_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_fn cb, void *arg)
{
	static const int types[] = { DNS_TYPE_TLSA };
	struct dns_query *q;
	char qname[DNS_NAME_MAX + 16];

	HK_ASSERT_LOOP();
	q = dns_query_start(d, DNS_KIND_TLSA, arg, types, HK_ARRAY_LEN(types));
	q->cb.tlsa = cb;
	snprintf(qname, sizeof(qname), "_%u._tcp.%s", port, host);
	if (port == 0 || port > 65535 || !dns_name_normalise(host, q->name, sizeof(q->name)) ||
	    !dns_name_normalise(qname, q->name, sizeof(q->name))) {
		dns_query_invalid(q, q->r.tlsa.why, sizeof(q->r.tlsa.why), &q->r.tlsa.status);
		return;
	}
	dns_sub_start(q, 0);
	dns_query_check(q);
}

void
dns_txt(struct dns *d, const char *name, dns_txt_fn cb, void *arg)
{
	static const int types[] = { DNS_TYPE_TXT };
	struct dns_query *q;

	HK_ASSERT_LOOP();
	q = dns_query_start(d, DNS_KIND_TXT, arg, types, HK_ARRAY_LEN(types));
	q->cb.txt = cb;
	if (!dns_name_normalise(name, q->name, sizeof(q->name))) {
		dns_query_invalid(q, q->r.txt.why, sizeof(q->r.txt.why), &q->r.txt.status);
		return;
	}
	dns_sub_start(q, 0);
	dns_query_check(q);
}

int
dns_reverse_name(const char *ip, const char *zone, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char a[16];
	struct buf b;
	int i, rc = -1;

	buf_init(&b);
	if (inet_pton(AF_INET, ip, a) == 1) {
		for (i = 3; i >= 0; i--)
			buf_printf(&b, "%u.", a[i]);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		/* RFC 3596 2.5: nibbles, lowest first. */
		for (i = 15; i >= 0; i--)
			buf_printf(&b, "%c.%c.", hex[a[i] & 15], hex[a[i] >> 4]);
	} else {
		goto done;
	}
	buf_append_str(&b, zone);
	if (b.len < size) {
		memcpy(out, b.ptr, b.len + 1);
		rc = 0;
	}
done:
	buf_fini(&b);
	return rc;
}

void
dns_ptr(struct dns *d, const char *ip, dns_ptr_fn cb, void *arg)
{
	static const int types[] = { DNS_TYPE_PTR };
	struct dns_query *q;
	char qname[DNS_NAME_MAX];

	HK_ASSERT_LOOP();
	q = dns_query_start(d, DNS_KIND_PTR, arg, types, HK_ARRAY_LEN(types));
	q->cb.ptr = cb;
	if (dns_reverse_name(ip, strchr(ip, ':') != NULL ? "ip6.arpa" : "in-addr.arpa", qname,
	    sizeof(qname)) == -1 || !dns_name_normalise(qname, q->name, sizeof(q->name))) {
		dns_query_invalid(q, q->r.ptr.why, sizeof(q->r.ptr.why), &q->r.ptr.status);
		return;
	}
	dns_sub_start(q, 0);
	dns_query_check(q);
}

static void
dns_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	int rc;

	(void)fd;
	(void)what;
	rc = ub_process(d->ctx);
	if (rc != 0)
		log_warn("dns", "process_failed", "err=%s", log_q(ub_strerror(rc)));
}

void
dns_params_from_conf(struct dns_params *p, const struct conf *c)
{
	memset(p, 0, sizeof(*p));
	p->resolv_conf = c->dns_resolv_conf;
	p->forward = c->n_dns_forward > 0 ? (const char *const *)c->dns_forward : NULL;
	p->trust_anchor = c->dns_dnssec ? c->dns_trust_anchor : NULL;
	p->timeout_ms = c->dns_timeout_ms;
}

static int
dns_ub_check(int rc, struct hk_err *err, const char *what, const char *arg)
{
	if (rc == 0)
		return 0;
	return hk_err_set(err, HK_E_CONFIG, "dns: %s%s%s: %s", what, arg != NULL ? " " : "",
	    arg != NULL ? arg : "", ub_strerror(rc));
}

static int
dns_configure(struct dns *d, const struct dns_params *p, struct hk_err *err)
{
	const char *const *f;

	if (dns_ub_check(ub_ctx_async(d->ctx, 1), err, "async mode", NULL) == -1)
		return -1;
	/* Forwarders and resolv.conf may well name a resolver on this host. */
	if (dns_ub_check(ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no"), err,
	    "option do-not-query-localhost", NULL) == -1)
		return -1;
	if (p->forward != NULL && p->forward[0] != NULL) {
		for (f = p->forward; *f != NULL; f++) {
			if (dns_ub_check(ub_ctx_set_fwd(d->ctx, *f), err, "forward", *f) == -1)
				return -1;
		}
	} else if (dns_ub_check(ub_ctx_resolvconf(d->ctx, p->resolv_conf), err, "resolv.conf",
	    p->resolv_conf != NULL ? p->resolv_conf : "/etc/resolv.conf") == -1) {
		return -1;
	}
	if (p->trust_anchor != NULL &&
	    dns_ub_check(ub_ctx_add_ta_file(d->ctx, p->trust_anchor), err, "trust anchor",
	    p->trust_anchor) == -1)
		return -1;
	return 0;
}

struct dns *
dns_new(struct event_base *base, const struct dns_params *p, struct hk_err *err)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	int fd;

	d->base = base;
	d->timeout_ms = p->timeout_ms > 0 ? p->timeout_ms : DNS_TIMEOUT_DEFAULT_MS;
	if (getrandom(&d->rng, sizeof(d->rng), GRND_NONBLOCK) != (ssize_t)sizeof(d->rng))
		d->rng = clock_mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)d;
	d->ctx = ub_ctx_create();
	if (d->ctx == NULL) {
		hk_err_set(err, HK_E_IO, "dns: cannot create a resolver context");
		goto fail;
	}
	if (dns_configure(d, p, err) == -1)
		goto fail;
	fd = ub_fd(d->ctx);
	if (fd < 0) {
		hk_err_set(err, HK_E_IO, "dns: resolver has no file descriptor");
		goto fail;
	}
	d->ev_fd = event_new(base, fd, EV_READ | EV_PERSIST, dns_fd_cb, d);
	if (d->ev_fd == NULL || event_add(d->ev_fd, NULL) == -1) {
		hk_err_set(err, HK_E_IO, "dns: cannot watch the resolver");
		goto fail;
	}
	return d;
fail:
	dns_free(d);
	return NULL;
}

void
dns_free(struct dns *d)
{
	struct dns_query *q;
	size_t i;

	if (d == NULL)
		return;
	while ((q = d->head) != NULL) {
		for (i = 0; i < q->n_sub; i++) {
			if (q->sub[i].live)
				(void)ub_cancel(d->ctx, q->sub[i].ub_id);
		}
		dns_query_unlink(q);
		dns_query_free(q);
	}
	if (d->ev_fd != NULL)
		event_free(d->ev_fd);
	if (d->ctx != NULL)
		ub_ctx_delete(d->ctx);
	free(d);
}
