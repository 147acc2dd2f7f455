/* smtp_reply.c - strict, bounded SMTP reply parser (client side). */
#include <string.h>

#include "smtp_reply.h"
#include "../util/poison.h"

static enum smtp_reply_result
smtp_reply_bad(const char **why, const char *text)
{
	if (why != NULL)
		*why = text;
	return SMTP_REPLY_BAD;
}

void
smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->enh_class = 0;
	r->enh_subject = 0;
	r->enh_detail = 0;
	r->text[0] = '\0';
	r->text_len = 0;
	r->nlines = 0;
}

/* 1*3DIGIT at p[*i..len) into *v; false when none. */
static bool
smtp_reply_num3(const char *p, size_t len, size_t *i, int *v)
{
	size_t start = *i;

	*v = 0;
	while (*i < len && *i - start < 3 && p[*i] >= '0' && p[*i] <= '9') {
		*v = *v * 10 + (p[*i] - '0');
		(*i)++;
	}
	return *i > start;
}

size_t
smtp_reply_parse_enhanced(const char *p, size_t len, int *cls, int *subj, int *det)
{
	size_t i = 0;
	int c, s, d;

	/* RFC 3463 2: class "." subject "." detail; class 2, 4 or 5; 1*3 digits each. */
	if (len < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
		return 0;
	c = p[0] - '0';
	i = 2;
	if (!smtp_reply_num3(p, len, &i, &s) || i >= len || p[i] != '.')
		return 0;
	i++;
	if (!smtp_reply_num3(p, len, &i, &d))
		return 0;
	/* Must stand alone: "5.1.1234" or "5.1.1." is no code. */
	if (i < len && p[i] != ' ' && p[i] != '\t')
		return 0;
	*cls = c;
	*subj = s;
	*det = d;
	return i;
}

/* Append one line's text to r->text, "\n"-separated; false when over the bound. */
static bool
smtp_reply_add_text(struct smtp_reply *r, const char *t, size_t n)
{
	size_t need = n + (r->nlines > 0 ? 1 : 0);

	if (need > SMTP_REPLY_MAX_TEXT - r->text_len)
		return false;
	if (r->nlines > 0)
		r->text[r->text_len++] = '\n';
	memcpy(r->text + r->text_len, t, n);
	r->text_len += n;
	r->text[r->text_len] = '\0';
	return true;
}

enum smtp_reply_result
smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len, const char **why)
{
	const char *t;
	size_t i, n;
	int code, c, s, d;
	bool last;

	if (r->nlines >= SMTP_REPLY_MAX_LINES)
		return smtp_reply_bad(why, "too many reply lines");
	/* RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39 */
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    line[2] < '0' || line[2] > '9')
		return smtp_reply_bad(why, "bad reply code");
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3) {
		last = true;
	} else if (line[3] == ' ' || line[3] == '-') {
		last = line[3] == ' ';
	} else {
		return smtp_reply_bad(why, "expected ' ' or '-' after the reply code");
	}
	if (r->nlines > 0 && code != r->code)
		return smtp_reply_bad(why, "reply code changed between lines");
	t = len > 4 ? line + 4 : line + len;
	n = len > 4 ? len - 4 : 0;
	/* textstring = 1*(%d09 / %d32-126); 8-bit text is tolerated, control bytes are not. */
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)t[i];

		if ((ch < 32 && ch != '\t') || ch == 127)
			return smtp_reply_bad(why, "control character in reply text");
	}
	if (r->nlines == 0) {
		size_t e = smtp_reply_parse_enhanced(t, n, &c, &s, &d);

		/* RFC 3463 3: the class must agree with the reply code's first digit. */
		if (e > 0 && c == code / 100) {
			r->enh_class = c;
			r->enh_subject = s;
			r->enh_detail = d;
		}
	}
	if (r->enh_class != 0) {
		/* Drop the enhanced code each line repeats, so text is only the words. */
		size_t e = smtp_reply_parse_enhanced(t, n, &c, &s, &d);

		if (e > 0 && c == r->enh_class && s == r->enh_subject && d == r->enh_detail) {
			while (e < n && (t[e] == ' ' || t[e] == '\t'))
				e++;
			t += e;
			n -= e;
		}
	}
	if (!smtp_reply_add_text(r, t, n))
		return smtp_reply_bad(why, "reply text too long");
	r->code = code;
	r->nlines++;
	return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}
