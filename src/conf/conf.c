/*
 * conf.c - the snapshot's life: references, freeing, lookups, diagnostics buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_explain.h"
#include "conf_int.h"
#include "../util/poison.h"

void
conf_diag_init(struct conf_diag *d)
{
	buf_init(&d->text);
	d->count = 0;
}

void
conf_diag_fini(struct conf_diag *d)
{
	buf_fini(&d->text);
	d->count = 0;
}

static void
conf_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
conf_fini(struct conf *c)
{
	size_t i;

	free(c->path);
	free(c->node);
	free(c->hostname);
	free(c->spool);
	free(c->state);
	free(c->user);
	for (i = 0; i < c->n_listeners; i++) {
		free(c->listeners[i].addr.text);
		free(c->listeners[i].name);
	}
	free(c->listeners);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->networks);
	for (i = 0; i < c->n_users; i++) {
		free(c->users[i].name);
		free(c->users[i].password_hash);
	}
	free(c->users);
	for (i = 0; i < c->n_upstreams; i++) {
		struct conf_upstream *u = &c->upstreams[i];

		free(u->name);
		free(u->host);
		free(u->ca_file);
		free(u->username);
		free(u->password_file);
		free(u->helo);
	}
	free(c->upstreams);
	for (i = 0; i < c->n_routes; i++) {
		struct conf_route *r = &c->routes[i];

		free(r->name);
		conf_strv_free(r->sender_domains, r->n_sender_domains);
		conf_strv_free(r->recipient_domains, r->n_recipient_domains);
		conf_strv_free(r->listeners, r->n_listeners);
		conf_strv_free(r->users, r->n_users);
		free(r->upstreams);
	}
	free(c->routes);
	free(c->retry_schedule_ms);
	free(c->api_listen.text);
	free(c->api_token_file);
	free(c->api_control_socket);
	free(c->sendmail_socket);
	free(c->log_level);
	conf_strv_free(c->dns_forward, c->n_dns_forward);
	free(c->dns_resolv_conf);
	free(c->dns_trust_anchor);
	conf_strv_free(c->checks_domains, c->n_checks_domains);
	free(c->checks_selector);
	conf_strv_free(c->checks_ips, c->n_checks_ips);
	conf_strv_free(c->checks_blocklists, c->n_checks_blocklists);
	free(c->log_postfix_target);
	free(c->log_postfix_tag);
	free(c->explain_path);
	conf_explain_free(c->explain_rows, c->n_explain_rows);
	for (i = 0; i < c->n_alert_channels; i++) {
		struct conf_alert_channel *ch = &c->alert_channels[i];

		free(ch->name);
		free(ch->url);
		free(ch->url_file);
		free(ch->secret_file);
		free(ch->base_url);
		free(ch->account_sid_file);
		free(ch->auth_token_file);
		free(ch->from);
		conf_strv_free(ch->to, ch->n_to);
	}
	free(c->alert_channels);
	for (i = 0; i < c->n_alert_rules; i++) {
		struct conf_alert_rule *ar = &c->alert_rules[i];

		free(ar->name);
		conf_strv_free(ar->channels, ar->n_channels);
		conf_strv_free(ar->escalate_channels, ar->n_escalate_channels);
		conf_strv_free(ar->sender_domains, ar->n_sender_domains);
		conf_strv_free(ar->recipient_domains, ar->n_recipient_domains);
		conf_strv_free(ar->routes, ar->n_routes);
	}
	free(c->alert_rules);
	memset(c, 0, sizeof(*c));
}

struct conf *
conf_ref(struct conf *c)
{
	HK_ASSERT(c->refs > 0);
	c->refs++;
	return c;
}

void
conf_unref(struct conf *c)
{
	if (c == NULL)
		return;
	HK_ASSERT(c->refs > 0);
	if (--c->refs > 0)
		return;
	conf_fini(c);
	free(c);
}

const struct conf_upstream *
conf_upstream_find(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_upstreams; i++) {
		if (c->upstreams[i].name != NULL && strcmp(c->upstreams[i].name, name) == 0)
			return &c->upstreams[i];
	}
	return NULL;
}

const struct conf_user *
conf_user_find(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_users; i++) {
		if (c->users[i].name != NULL && strcmp(c->users[i].name, name) == 0)
			return &c->users[i];
	}
	return NULL;
}
