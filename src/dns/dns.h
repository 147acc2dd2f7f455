/*
 * dns.h - asynchronous DNS on the loop through libunbound (ub_fd() watched by libevent):
 * MX with preference order and A/AAAA fallback, addresses, TLSA, with DNSSEC status.
 *
 * Resolution follows the configuration's `dns:` section: the system resolv.conf by default, or
 * explicit forwarders ("127.0.0.1@5353": tests point this at a loopback server); DNSSEC
 * validation with the trust anchor file when one is given (Debian's dns-root-data ships
 * /usr/share/dns/root.key).
 * Results are passed to the callback (borrowed for the call). A callback runs exactly once per
 * query, on the loop, never from inside the call that started it.
 * Thread: loop thread only.
 */
#ifndef HK_DNS_H
#define HK_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "../util/err.h"

enum dns_status {
	DNS_OK = 0,
	DNS_NXDOMAIN,  /* the name does not exist: permanent */
	DNS_NODATA,    /* the name exists without records of the type */
	DNS_TEMPFAIL,  /* SERVFAIL, timeout, network: try again later */
	DNS_BOGUS,     /* DNSSEC validation failed: treat as temporary, log loudly */
	DNS_NULL_MX,   /* RFC 7505 "MX 0 ." : the domain accepts no mail (permanent) */
};

#define DNS_NAME_MAX 256
#define DNS_MAX_RESULTS 32

struct dns_mx_host {
	char name[DNS_NAME_MAX];
	unsigned pref;
};

struct dns_mx_result {
	enum dns_status status;
	bool secure;       /* DNSSEC-validated answer */
	bool implicit;     /* no MX: the domain itself as the only host (RFC 5321 5.1) */
	size_t n;          /* hosts, in preference order; equal preferences shuffled */
	struct dns_mx_host hosts[DNS_MAX_RESULTS];
	char why[128];     /* for logs when status != DNS_OK */
};

struct dns_addr_result {
	enum dns_status status;
	bool secure;
	size_t n;          /* IPv6 first when present, then IPv4 (RFC 6724 default preference) */
	struct sockaddr_storage addrs[DNS_MAX_RESULTS];
	socklen_t lens[DNS_MAX_RESULTS];
	char why[128];
};

struct dns_tlsa_record {
	uint8_t usage, selector, mtype;
	size_t len;
	uint8_t data[64];
};

struct dns_tlsa_result {
	enum dns_status status;
	bool secure;       /* only secure TLSA records may be used (RFC 7672) */
	size_t n;
	struct dns_tlsa_record recs[8];
	char why[128];
};

/* TXT records (each one's character-strings joined, RFC 7208 3.3); text borrowed for the call. */
#define DNS_TXT_MAX 32
struct dns_txt_result {
	enum dns_status status;
	bool secure;
	size_t n;
	const char *recs[DNS_TXT_MAX]; /* NUL-terminated; lens[] counts bytes (NULs inside too) */
	size_t lens[DNS_TXT_MAX];
	char why[128];
};

/* PTR names of an address (lower case, no trailing dot). */
#define DNS_PTR_MAX 8
struct dns_ptr_result {
	enum dns_status status;
	bool secure;
	size_t n;
	char names[DNS_PTR_MAX][DNS_NAME_MAX];
	char why[128];
};

typedef void (*dns_mx_fn)(void *arg, const struct dns_mx_result *r);
typedef void (*dns_addr_fn)(void *arg, const struct dns_addr_result *r);
typedef void (*dns_tlsa_fn)(void *arg, const struct dns_tlsa_result *r);
typedef void (*dns_txt_fn)(void *arg, const struct dns_txt_result *r);
typedef void (*dns_ptr_fn)(void *arg, const struct dns_ptr_result *r);

struct dns_params {
	const char *resolv_conf;   /* NULL: /etc/resolv.conf */
	const char *const *forward; /* NULL-terminated "ip" or "ip@port"; overrides resolv_conf */
	const char *trust_anchor;  /* NULL: no DNSSEC validation */
	uint64_t timeout_ms;       /* per query; 0: 10 s */
};

struct conf;

/*
 * Fill p from the configuration's dns: section. The pointers are borrowed from c, which must
 * outlive the dns_new() call (libunbound copies what it keeps).
 */
void dns_params_from_conf(struct dns_params *p, const struct conf *c);

/*
 * Create a resolver whose fd is watched on base. -1 style failure: NULL with err (HK_E_CONFIG
 * for a bad forwarder, an unreadable resolv.conf or trust anchor).
 */
struct dns *dns_new(struct event_base *base, const struct dns_params *p, struct hk_err *err);
/* Cancels outstanding queries (their callbacks do not run). NULL is a no-op. */
void dns_free(struct dns *d);

/*
 * MX of domain; with no MX records, the domain's own A/AAAA as an implicit MX. A domain that is
 * not a valid host name (LDH labels, at most 253 bytes) gives DNS_NXDOMAIN without a query.
 */
void dns_mx(struct dns *d, const char *domain, dns_mx_fn cb, void *arg);
/* A and AAAA of host (a numeric IPv4 or IPv6 address is returned as is, without a query). */
void dns_addrs(struct dns *d, const char *host, dns_addr_fn cb, void *arg);
/*
 * TLSA at _port._tcp.host. Records whose data is over 64 bytes (full certificates, matching
 * type 0) are skipped: status DNS_OK with n 0 means a TLSA set exists but none is usable here.
 */
void dns_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_fn cb, void *arg);

/*
 * TXT records of name ("_" labels allowed: _dmarc, _domainkey). At most DNS_TXT_MAX records;
 * a record over 65535 bytes cannot occur. NXDOMAIN/NODATA as for the other queries.
 */
void dns_txt(struct dns *d, const char *name, dns_txt_fn cb, void *arg);
/*
 * PTR records of the numeric address ip (IPv4 or IPv6 text), looked up under in-addr.arpa or
 * ip6.arpa. Text that is not an address gives DNS_NXDOMAIN without a query.
 */
void dns_ptr(struct dns *d, const char *ip, dns_ptr_fn cb, void *arg);
/*
 * The reverse name of ip below zone ("1.2.0.192" + "." + zone for 192.0.2.1; nibbles for IPv6):
 * the query names of DNS blocklists ("in-addr.arpa"/"ip6.arpa" for PTR). -1 when ip is not an
 * address or the result does not fit out.
 */
HK_MUST_CHECK int dns_reverse_name(const char *ip, const char *zone, char *out, size_t size);

const char *dns_status_name(enum dns_status s);

#endif
