/*
 * conf.h - the validated configuration snapshot.
 *
 * conf_load() parses YAML (libyaml) against a strict schema: unknown keys, wrong types, bad
 * durations/sizes/rates/addresses/CIDRs, dangling references and unreadable files are each one
 * diagnostic "FILE:LINE:COL: message". A snapshot is immutable once loaded; it is shared by
 * reference count (sessions keep the one they started with across SIGHUP).
 * Ownership: conf_load() returns a snapshot with one reference; conf_unref() frees at zero.
 * Thread: conf_load() anywhere (it only reads files); ref/unref on the loop.
 */
#ifndef HK_CONF_H
#define HK_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../util/buf.h"
#include "../util/common.h"

struct explain_entry;

enum conf_tls { CONF_TLS_NONE = 0, CONF_TLS_STARTTLS, CONF_TLS_IMPLICIT };
enum conf_auth { CONF_AUTH_NONE = 0, CONF_AUTH_OPTIONAL, CONF_AUTH_REQUIRED };

#define CONF_RELAY_NETWORKS 0x1u
#define CONF_RELAY_AUTHENTICATED 0x2u

/* A socket address written "host:port", "[v6]:port" or "/path" (Unix socket). */
struct conf_addr {
	char *text; /* as written */
	struct sockaddr_storage ss;
	socklen_t len;
};

struct conf_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

struct conf_listener {
	struct conf_addr addr;    /* key: address */
	char *name;               /* key: name (default: the address text) */
	enum conf_tls tls;        /* key: tls (default none) */
	enum conf_auth auth;      /* key: auth (default none) */
	unsigned relay;           /* key: relay, CONF_RELAY_* bits (default networks) */
	bool allow_insecure_auth; /* key: allow_insecure_auth (default false) */
	bool implicit_submission; /* true when tls is implicit (port 465 style) */
};

struct conf_user {
	char *name;
	char *password_hash; /* crypt(3) string */
};

struct conf_limits {
	uint64_t max_message_size;      /* max_message_size, default 25M */
	unsigned max_recipients;        /* max_recipients, default 1000 */
	unsigned max_line;              /* max_line, default 8192 (bytes, without CRLF; >= 1000) */
	unsigned max_connections;       /* max_connections, default 1000 */
	unsigned max_connections_per_ip; /* max_connections_per_ip, default 100 */
	unsigned max_errors;            /* max_errors per session, default 10 */
	uint64_t command_timeout_ms;    /* command_timeout, default 5m (RFC 5321 4.5.3.2.7) */
	uint64_t data_timeout_ms;       /* data_timeout, default 10m */
	unsigned auth_failures_per_min; /* auth_failures_per_min per IP and per user, default 5 */
	uint64_t greet_pause_ms;        /* greet_pause before the 220 greeting, default 5ms */
};

struct conf_upstream_limits {
	uint64_t per_day;  /* 0 = unlimited */
	uint64_t per_hour; /* 0 = unlimited */
	uint64_t rate_count, rate_period_ms; /* rate: N/s|m|h; count 0 = unlimited */
	unsigned connections;            /* default 4 */
	unsigned recipients_per_message; /* default 100 */
	uint64_t max_size;               /* 0 = unlimited */
};

struct conf_upstream {
	char *name;
	char *host;
	unsigned port;    /* default 587, 465 for implicit TLS, 25 for tls: none */
	enum conf_tls tls; /* default starttls */
	bool verify;      /* default true */
	char *ca_file;    /* default NULL: system store */
	char *username;   /* NULL: no AUTH */
	char *password_file;
	char *helo;       /* EHLO name; default conf->hostname */
	struct conf_upstream_limits limits;
};

struct conf_route {
	char *name;
	char **sender_domains; size_t n_sender_domains;       /* match.sender_domain */
	char **recipient_domains; size_t n_recipient_domains; /* match.recipient_domain */
	char **listeners; size_t n_listeners;                 /* match.listener */
	char **users; size_t n_users;                         /* match.user */
	size_t *upstreams; size_t n_upstreams; /* indexes into conf->upstreams, in order */
	bool mx;
};

/* alerts.channels[].type (src/alert/notify.h). */
enum conf_channel_type {
	CONF_CHANNEL_EMAIL = 0,
	CONF_CHANNEL_SLACK,
	CONF_CHANNEL_TEAMS,
	CONF_CHANNEL_TWILIO,
	CONF_CHANNEL_WEBHOOK,
};

/* alerts.channels[]: where alert notices go, addressed by name (docs/alerts.md "Channels"). */
struct conf_alert_channel {
	char *name;
	enum conf_channel_type type;
	char *url;              /* slack, teams, webhook: the URL itself (or url_file) */
	char *url_file;         /* slack, teams, webhook: a file holding the URL (a secret) */
	char *secret_file;      /* webhook: "whsec_<base64>" (Standard Webhooks) */
	char *base_url;         /* twilio: default https://api.twilio.com */
	char *account_sid_file; /* twilio */
	char *auth_token_file;  /* twilio */
	char *from;             /* email: sender address; twilio: sender number */
	char **to; size_t n_to; /* email: addresses; twilio: numbers (+E.164) */
	uint64_t timeout_ms;     /* timeout: one request, default 10s */
	unsigned retries;        /* retries after the first attempt, default 3 */
	uint64_t backoff_ms;     /* backoff: first wait, doubled each retry, default 2s */
	uint64_t backoff_max_ms; /* backoff_max: longest wait, also caps Retry-After, default 5m */
};

/* alerts.rules[].when: the condition a rule watches (docs/alerts.md "Rules"). */
enum conf_alert_when {
	CONF_ALERT_PERMANENT_FAILURE = 0, /* a recipient bounced or expired */
	CONF_ALERT_DEFERRED,              /* a message still deferred after threshold (ms) */
	CONF_ALERT_UPSTREAM_DOWN,         /* an upstream's breaker opened; clears when it closes */
	CONF_ALERT_FAILOVER,              /* recipients moved to a later upstream */
	CONF_ALERT_QUOTA,                 /* an upstream's quota use above threshold (percent) */
	CONF_ALERT_QUEUE_SIZE,            /* queued messages above threshold (count) */
	CONF_ALERT_QUEUE_AGE,             /* oldest queued message older than threshold (ms) */
	CONF_ALERT_BOUNCE_RATE,           /* bounced / finished over window above threshold (%) */
	CONF_ALERT_DEFERRAL_RATE,         /* deferred / outcomes over window above threshold (%) */
	CONF_ALERT_AUTH_FAILURES,         /* ingress AUTH failures per window above threshold */
	CONF_ALERT_CERT_EXPIRY,           /* a listener certificate expires within threshold (ms) */
	CONF_ALERT_DISK_FREE,             /* spool disk free below threshold (percent) */
	CONF_ALERT_DNS_CHECK,             /* a scheduled DNS check (checks:) found something worse */
};

#define CONF_ALERT_WHEN_COUNT (CONF_ALERT_DNS_CHECK + 1)

/* alerts.rules[].group_by: one alert per upstream, per recipient domain, or one per rule. */
enum conf_alert_group {
	CONF_ALERT_GROUP_UPSTREAM = 0,
	CONF_ALERT_GROUP_DOMAIN,
	CONF_ALERT_GROUP_RULE,
};

/* alerts.rules[]: when to alert, how often, and to whom (src/alert/alert_rules.h). */
struct conf_alert_rule {
	char *name;
	enum conf_alert_when when;
	uint64_t threshold;      /* count, percent (0..100) or ms, by condition (defaults vary) */
	uint64_t window_ms;      /* window, default 5m (1m for auth_failures) */
	uint64_t cooldown_ms;    /* cooldown, default 15m */
	unsigned min_samples;    /* min_samples for the rate conditions, default 20 */
	enum conf_alert_group group_by; /* default per condition */
	char **channels; size_t n_channels;
	uint64_t escalate_after_ms; /* escalate.after; 0: never */
	char **escalate_channels; size_t n_escalate_channels;
	bool recovery;           /* recovery notice when it clears, default true */
	char **sender_domains; size_t n_sender_domains;       /* filters.sender_domain */
	char **recipient_domains; size_t n_recipient_domains; /* filters.recipient_domain */
	char **routes; size_t n_routes;                       /* filters.route */
	int hours_from, hours_to; /* filters.hours as minutes of the day (local time); -1: always */
	bool has_threshold, has_group_by, has_window; /* set in the file (else defaults apply) */
};

struct conf {
	char *path;     /* the file loaded */
	char *node;     /* default: host name */
	unsigned node_id; /* 0..255, key node_id; default: a hash of node */
	char *hostname; /* greeting/Received name; default: gethostname() */
	char *spool;    /* default /var/spool/hikyaku */
	char *state;    /* default /var/lib/hikyaku */
	char *user;     /* run_as user, default "hikyaku" (key: user) */
	struct conf_listener *listeners; size_t n_listeners;
	char *tls_cert, *tls_key; /* tls.cert, tls.key; required when a listener uses TLS */
	struct conf_cidr *networks; size_t n_networks; /* default 127.0.0.0/8, ::1/128 */
	struct conf_user *users; size_t n_users;
	struct conf_limits limits;
	struct conf_upstream *upstreams; size_t n_upstreams;
	struct conf_route *routes; size_t n_routes;
	uint64_t *retry_schedule_ms; size_t n_retry; /* default 1m 5m 15m 1h 4h */
	uint64_t retry_max_age_ms;                   /* default 5d */
	struct conf_addr api_listen; /* api.listen, default 127.0.0.1:8025 */
	char *api_token_file;        /* NULL: TCP API answers 401 */
	char *api_control_socket;    /* default <state>/control.sock */
	/*
	 * sendmail.socket: the local SMTP socket of the sendmail command (mode 0666). Default:
	 * sendmail.sock beside api_control_socket; NULL when that would not fit a socket address.
	 */
	char *sendmail_socket;
	uint64_t log_retention_ms;   /* log.retention, default 30d */
	bool log_keep_bodies;        /* log.keep_bodies, default true */
	char *log_level;             /* log.level: debug|info|warn|error, default info */
	unsigned log_trace;          /* log.trace: [smtpd, smtpc, spool] -> TRACE_* bits */
	/* delivery: outbound SMTP */
	uint64_t delivery_connect_timeout_ms; /* delivery.connect_timeout, default 10s */
	uint64_t delivery_command_timeout_ms; /* delivery.command_timeout, default 60s */
	uint64_t delivery_dot_timeout_ms;     /* delivery.dot_timeout, default 10m */
	unsigned delivery_mx_port;            /* delivery.mx_port, default 25 */
	unsigned delivery_max_messages;       /* delivery.max_messages in delivery at once, 1000 */
	uint64_t delivery_breaker_open_ms;    /* delivery.breaker_open, default 30s */
	uint64_t delivery_idle_timeout_ms;    /* delivery.connection_reuse, default 5s */
	/* dns: the resolver for direct MX delivery */
	char **dns_forward; size_t n_dns_forward; /* dns.forward: "ip" or "ip@port", NULL-ended */
	char *dns_resolv_conf;   /* dns.resolv_conf, default /etc/resolv.conf (without forward) */
	bool dns_dnssec;         /* dns.dnssec, default false */
	char *dns_trust_anchor;  /* dns.trust_anchor, default /usr/share/dns/root.key */
	uint64_t dns_timeout_ms; /* dns.timeout per query, default 10s */
	/* checks: scheduled DNS checks (src/diag, docs/diagnostics.md "DNS checks") */
	uint64_t checks_interval_ms; /* checks.interval, default 6h; 0: no scheduled checks */
	char **checks_domains; size_t n_checks_domains;   /* checks.domains, default none */
	char *checks_selector;       /* checks.selector: DKIM selector, NULL: DKIM not checked */
	char **checks_ips; size_t n_checks_ips;           /* checks.ips: sending addresses */
	char **checks_blocklists; size_t n_checks_blocklists; /* checks.blocklists (DNSBL zones) */
	char *log_postfix_target; /* log.postfix.target: NULL off, "stderr", "syslog" or a path */
	char *log_postfix_tag;    /* log.postfix.tag, default "hikyaku" */
	unsigned spool_workers;      /* spool_workers; 0 (default): 2 per core, at least 4 */
	struct conf_alert_channel *alert_channels; size_t n_alert_channels; /* alerts.channels */
	/*
	 * explain: a file of extra reply-explainer rows (docs/explain.md), loaded with the
	 * configuration (conf_explain.h); the rows go before the compiled-in table.
	 */
	char *explain_path;
	struct explain_entry *explain_rows; size_t n_explain_rows;
	struct conf_alert_rule *alert_rules; size_t n_alert_rules; /* alerts.rules */
	unsigned alert_time_scale; /* alerts.time_scale: rule durations divided by it (tests); 1 */
	int refs;
};

/* Diagnostics collected by conf_load(): one "FILE:LINE:COL: message" per line. */
struct conf_diag {
	struct buf text;
	unsigned count;
};

void conf_diag_init(struct conf_diag *d);
void conf_diag_fini(struct conf_diag *d);

/*
 * Load and validate path. On success returns 0 and *out (one reference). On any problem returns -1
 * with every problem found appended to diag (it keeps going after the first), *out NULL.
 */
HK_MUST_CHECK int conf_load(const char *path, struct conf **out, struct conf_diag *diag);
/* Same from a string (tests, fuzzing); name is used in diagnostics; no file checks when !check_files. */
HK_MUST_CHECK int conf_load_string(const char *name, const char *yaml, size_t len, bool check_files,
    struct conf **out, struct conf_diag *diag);

struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/* Lookups: NULL when absent. */
const struct conf_upstream *conf_upstream_find(const struct conf *c, const char *name);
const struct conf_user *conf_user_find(const struct conf *c, const char *name);
/* True when sa (AF_INET/AF_INET6; v4-mapped v6 counts as v4) is inside one of c->networks. */
bool conf_networks_contain(const struct conf *c, const struct sockaddr *sa);
/* True when sa is inside cidr. */
bool conf_cidr_contains(const struct conf_cidr *cidr, const struct sockaddr *sa);
/*
 * Parse "ip:port", "[v6]:port" (numeric addresses only, port 1..65535) or a Unix socket path
 * starting with "/" or ".". -1 with *why (static) and out untouched; on success out->text is a
 * copy the caller frees.
 */
HK_MUST_CHECK int conf_addr_parse(const char *text, struct conf_addr *out, const char **why);
/* Parse "10.0.0.0/8", "::1/128", or a bare address (full prefix). */
HK_MUST_CHECK int conf_cidr_parse(const char *text, struct conf_cidr *out, const char **why);

#endif
