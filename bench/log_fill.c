/*
 * log_fill.c - fill an email log with synthetic mail for bench/log_search.sh.
 *
 *   bench_log_fill [-n MESSAGES] [-d DAYS] [-k SAMPLES] [-o SAMPLEFILE] STATE_DIR
 *
 * Writes MESSAGES (1,000,000) messages into STATE_DIR/hikyaku.db through the real writer
 * (maillog_received, maillog_attempt, maillog_status): the real schema, indexes, FTS rows and
 * batching (one transaction per batch, synchronous=FULL). Each message has one recipient and
 * three events: received, attempt, then sent, deferred or bounced. Received times are spread
 * evenly over the last DAYS (30) days with jitter, in ID order, as a live relay would log them.
 *
 * Data: 50 senders on 5 domains; 250,000 recipient addresses over 5,000 domains, 30 % of the
 * mail going to the 2,000 most frequent ones; subjects from ten templates filled with order
 * numbers, months, names, cities, products and about 200 newsletter topics (for full-text
 * search). A fixed seed makes every run write the same log.
 *
 * SAMPLEFILE (default STATE_DIR/samples.txt) gets SAMPLES (200) query values of each kind, drawn
 * from what was written: "to ADDR" (half frequent, half rare recipients), "q WORD" (one in five a
 * template word found in many subjects, the rest topics, names, cities, products) and
 * "range STATUS SINCE UNTIL" (Unix seconds, windows of 1 hour to 7 days inside the filled span).
 *
 * Exit: 0 done, 64 usage, 1 the log could not be opened or events were lost.
 * Thread: one; the maillog writer thread is internal.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/db/maillog.h"
#include "../src/jobs/jobs.h"
#include "../src/spool/spool_format.h"
#include "../src/util/buf.h"
#include "../src/util/clock.h"
#include "../src/util/id.h"
#include "../src/util/num.h"
#include "../src/util/xalloc.h"
#include "../src/util/poison.h"

#define FILL_DOMAINS 5000u
#define FILL_RCPTS 250000u
#define FILL_RCPTS_HOT 2000u
#define FILL_PENDING_MAX 20000u /* events queued before we wait for the writer */
#define FILL_DAY_MS 86400000ull

static const char *const fill_w1[] = {
	"blue", "red", "green", "north", "south", "east", "west", "sun", "moon", "star",
	"river", "lake", "stone", "iron", "gold", "silver", "oak", "pine", "maple", "cedar",
	"swift", "bright", "quick", "quiet", "grand", "little", "old", "new", "high", "deep",
	"fox", "wolf", "bear", "hawk", "crow", "owl", "lion", "tiger", "eagle", "falcon",
	"cloud", "storm", "rain", "snow", "wind", "fire", "ice", "sky", "sea", "bay",
	"alpha", "beta", "delta", "gamma", "omega", "nova", "astro", "terra", "aqua", "zen",
	"city", "metro", "urban", "rural", "coast", "valley", "hill", "field", "forest", "garden",
	"smart",
};
static const char *const fill_w2[] = {
	"mail", "net", "web", "link", "hub", "box", "post", "works", "labs", "soft",
	"tech", "data", "cloud", "point", "gate", "port", "line", "wave", "base", "core",
	"shop", "store", "market", "trade", "bank", "pay", "cash", "fund", "care", "med",
	"home", "house", "land", "field", "farm", "wood", "stone", "works", "media", "news",
	"studio", "design", "print", "press", "books", "music", "games", "sport", "travel", "tours",
	"air", "rail", "road", "auto", "motors", "parts", "tools", "build", "craft", "foods",
	"cafe", "bistro", "bakery", "wine", "beer", "tea", "fresh", "green", "energy", "power",
	"solar",
};
static const char *const fill_tld[] = { "example.com", "example.net", "example.org" };
static const char *const fill_first[] = {
	"anna", "ben", "carla", "david", "emma", "felix", "greta", "hugo", "ida", "jonas",
	"karin", "lukas", "mia", "noah", "olga", "paul", "quinn", "rosa", "sven", "tina",
	"ulla", "victor", "wanda", "xavier", "yuki", "zoe", "adam", "bella", "chris", "dana",
	"erik", "fiona", "george", "hanna", "ivan", "julia", "kai", "lena", "max", "nina",
	"oscar", "petra", "ralf", "sara", "tom", "uma", "vera", "will", "xenia", "yann",
	"aiko", "bruno", "clara", "dirk", "elif", "frank", "gina", "hiro", "ines", "jan",
	"kenji", "lara", "milan", "nora", "otto", "pia", "rene", "sofia", "timo", "ute",
	"vince", "wendy", "yasmin", "zeno", "alma", "boris", "cleo", "dora", "emil", "flora",
	"gustav", "helga", "igor", "jana", "karl", "lotte", "moritz", "nele", "olaf", "paula",
	"rudi", "selma", "theo", "ulf", "valentin", "wilma", "yara", "zara", "arne", "birte",
};
static const char *const fill_last[] = {
	"mueller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
	"schulz", "hoffmann", "koch", "richter", "klein", "wolf", "neumann", "schwarz", "braun",
	"zimmermann", "krueger", "hartmann", "lange", "werner", "krause", "lehmann", "koehler",
	"smith", "jones", "taylor", "brown", "wilson", "evans", "thomas", "johnson", "roberts",
	"walker", "wright", "robinson", "thompson", "white", "hughes", "edwards", "green",
	"hall", "wood", "harris", "martin", "jackson", "clarke", "lewis", "tanaka", "suzuki",
	"sato", "takahashi", "watanabe", "ito", "yamamoto", "nakamura", "kobayashi", "kato",
	"yoshida", "yamada", "sasaki", "yamaguchi", "matsumoto", "inoue", "kimura", "hayashi",
	"shimizu", "dupont", "durand", "leroy", "moreau", "simon", "laurent", "michel", "garcia",
	"rossi", "russo", "ferrari", "esposito", "bianchi", "romano", "colombo", "ricci",
	"novak", "horvat", "kowalski", "nowak", "silva", "santos", "costa", "pereira",
	"jansen", "devries", "bakker", "visser", "smit", "meijer", "deboer", "mulder",
};
static const char *const fill_sender_local[] = {
	"noreply", "billing", "support", "news", "orders", "alerts", "accounts", "hr", "sales",
	"info",
};
static const char *const fill_sender_domain[] = {
	"shop.example.com", "app.example.com", "mail.example.org", "billing.example.net",
	"news.example.org",
};
static const char *const fill_month[] = {
	"January", "February", "March", "April", "May", "June", "July", "August", "September",
	"October", "November", "December",
};
static const char *const fill_city[] = {
	"Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Stuttgart", "Leipzig", "Dresden",
	"Vienna", "Zurich", "Paris", "Lyon", "Madrid", "Lisbon", "Rome", "Milan", "Amsterdam",
	"Brussels", "Copenhagen", "Oslo", "Stockholm", "Helsinki", "Warsaw", "Prague", "Budapest",
	"London", "Dublin", "Tokyo", "Osaka", "Sapporo", "Seoul", "Toronto", "Montreal", "Boston",
	"Chicago", "Denver", "Seattle", "Austin", "Sydney", "Auckland",
};
static const char *const fill_product[] = {
	"Premium", "Cloud Backup", "Photo Studio", "Music Plus", "Video Pro", "Fitness Coach",
	"Recipe Box", "Language Lab", "Travel Pass", "News Digest", "Office Suite", "Password Vault",
	"Smart Home", "Garden Planner", "Book Club", "Game Pass", "Wine Club", "Coffee Club",
	"Pet Care", "Kids Learn",
};
/* Newsletter topics: the long tail of the full-text vocabulary. */
static const char *const fill_topic[] = {
	"gardening", "astronomy", "cycling", "baking", "photography", "hiking", "sailing",
	"knitting", "pottery", "chess", "football", "tennis", "golf", "swimming", "running",
	"climbing", "skiing", "surfing", "fishing", "camping", "birdwatching", "beekeeping",
	"woodworking", "calligraphy", "origami", "painting", "sculpture", "jazz", "opera",
	"classical", "techno", "reggae", "poetry", "novels", "comics", "cinema", "theatre",
	"ballet", "architecture", "interiors", "furniture", "ceramics", "textiles", "fashion",
	"jewellery", "perfume", "skincare", "haircare", "nutrition", "vegan", "vegetarian",
	"barbecue", "sourdough", "pastry", "chocolate", "cheese", "espresso", "matcha", "cocktails",
	"whisky", "cider", "kombucha", "fermentation", "foraging", "mushrooms", "herbs", "spices",
	"curry", "ramen", "sushi", "tapas", "pizza", "pasta", "dumplings", "noodles", "salads",
	"smoothies", "investing", "budgeting", "pensions", "mortgages", "insurance", "taxes",
	"startups", "marketing", "leadership", "negotiation", "productivity", "mindfulness",
	"meditation", "yoga", "pilates", "sleep", "parenting", "toddlers", "teenagers", "pets",
	"puppies", "kittens", "aquariums", "reptiles", "horses", "robotics", "electronics",
	"soldering", "arduino", "raspberry", "linux", "databases", "networking", "security",
	"privacy", "encryption", "compilers", "rust", "golang", "python", "javascript", "kotlin",
	"haskell", "mathematics", "statistics", "physics", "chemistry", "biology", "geology",
	"volcanoes", "earthquakes", "glaciers", "oceans", "rainforests", "deserts", "islands",
	"castles", "museums", "archaeology", "history", "genealogy", "languages", "japanese",
	"spanish", "italian", "portuguese", "swedish", "finnish", "greek", "latin", "philosophy",
	"psychology", "sociology", "economics", "politics", "elections", "climate", "recycling",
	"composting", "solarpanels", "heatpumps", "insulation", "renovation", "plumbing",
	"roofing", "flooring", "lighting", "lamps", "bicycles", "scooters", "motorcycles",
	"caravans", "railways", "airlines", "airports", "cruises", "hostels", "festivals",
	"concerts", "marathons", "triathlon", "rowing", "kayaking", "canoeing", "diving",
	"snorkelling", "volleyball", "basketball", "handball", "hockey", "cricket", "rugby",
	"badminton", "archery", "fencing", "judo", "karate", "boxing", "wrestling", "darts",
	"billiards", "bowling", "crosswords", "sudoku", "puzzles", "boardgames", "trivia",
};
/* Words of the templates below: in many subjects each. */
static const char *const fill_common[] = {
	"order", "shipped", "invoice", "password", "reset", "newsletter", "subscription",
	"renews", "welcome", "reminder", "appointment", "security", "receipt", "payment",
	"digest", "messages",
};

/* xorshift64*: fast, good enough for test data, the same sequence on every run. */
static uint64_t fill_rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t
fill_rand(void)
{
	uint64_t x = fill_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	fill_rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t
fill_below(uint64_t n)
{
	return fill_rand() % n;
}

#define FILL_PICK(arr) ((arr)[fill_below(HK_ARRAY_LEN(arr))])

static void
fill_domain(unsigned d, struct buf *out)
{
	unsigned n1 = HK_ARRAY_LEN(fill_w1), n2 = HK_ARRAY_LEN(fill_w2);

	buf_printf(out, "%s%s.%s", fill_w1[d % n1], fill_w2[(d / n1) % n2],
	    fill_tld[(d / (n1 * n2)) % HK_ARRAY_LEN(fill_tld)]);
}

/* Recipient r (0 .. FILL_RCPTS-1) as an address; the same r always gives the same address. */
static void
fill_rcpt(unsigned r, struct buf *out)
{
	unsigned nf = HK_ARRAY_LEN(fill_first), nl = HK_ARRAY_LEN(fill_last);
	unsigned n = r / (nf * nl);

	buf_reset(out);
	buf_printf(out, "%s.%s", fill_first[r % nf], fill_last[(r / nf) % nl]);
	if (n > 0)
		buf_printf(out, "%u", n);
	buf_putc(out, '@');
	/* Knuth's multiplicative hash spreads neighbours over the domains. */
	fill_domain((unsigned)(((uint64_t)r * 2654435761u) % FILL_DOMAINS), out);
}

static unsigned
fill_pick_rcpt(void)
{
	return fill_below(10) < 3 ? (unsigned)fill_below(FILL_RCPTS_HOT) :
	    (unsigned)fill_below(FILL_RCPTS);
}

static void
fill_subject(struct buf *out)
{
	buf_reset(out);
	switch (fill_below(10)) {
	case 0:
		buf_printf(out, "Your order %06u has shipped", (unsigned)fill_below(1000000));
		break;
	case 1:
		buf_printf(out, "Invoice %u for %s %u", (unsigned)fill_below(100000),
		    FILL_PICK(fill_month), 2024u + (unsigned)fill_below(2));
		break;
	case 2:
		buf_printf(out, "Password reset requested for %s", FILL_PICK(fill_first));
		break;
	case 3:
		buf_printf(out, "Weekly newsletter: %s and %s", FILL_PICK(fill_topic),
		    FILL_PICK(fill_topic));
		break;
	case 4:
		buf_printf(out, "Your %s subscription renews on %s %u", FILL_PICK(fill_product),
		    FILL_PICK(fill_month), 1u + (unsigned)fill_below(28));
		break;
	case 5:
		buf_printf(out, "Welcome to %s, %s", FILL_PICK(fill_product), FILL_PICK(fill_first));
		break;
	case 6:
		buf_printf(out, "Reminder: appointment in %s on %s %u", FILL_PICK(fill_city),
		    FILL_PICK(fill_month), 1u + (unsigned)fill_below(28));
		break;
	case 7:
		buf_printf(out, "Security alert: new sign-in from %s", FILL_PICK(fill_city));
		break;
	case 8:
		buf_printf(out, "Receipt for your payment to %s", FILL_PICK(fill_product));
		break;
	default:
		buf_printf(out, "%s digest: %u new messages about %s", FILL_PICK(fill_product),
		    1u + (unsigned)fill_below(50), FILL_PICK(fill_topic));
		break;
	}
}

struct fill_outcome {
	enum maillog_event ev;
	int code;
	const char *enhanced;
	const char *text;
	const char *result;
};

static const struct fill_outcome fill_outcomes[] = {
	{ MAILLOG_SENT, 250, "2.0.0", "Ok: queued as 4Xb7Kq2mZ9z", "sent" },
	{ MAILLOG_DEFERRED, 451, "4.7.1", "Try again later, closing connection", "deferred" },
	{ MAILLOG_DEFERRED, 421, "4.3.2", "Service not available", "deferred" },
	{ MAILLOG_BOUNCED, 550, "5.1.1", "The email account that you tried to reach does not exist",
	  "bounced" },
	{ MAILLOG_BOUNCED, 552, "5.2.2", "Mailbox full", "bounced" },
};

static const struct fill_outcome *
fill_pick_outcome(void)
{
	unsigned r = (unsigned)fill_below(100);

	if (r < 85)
		return &fill_outcomes[0];
	if (r < 95)
		return &fill_outcomes[r < 91 ? 1 : 2];
	return &fill_outcomes[r < 99 ? 3 : 4];
}

static void
fill_wait(struct jobs *hub, struct maillog *ml, size_t max)
{
	while (maillog_pending(ml) > max)
		jobs_wait_completions(hub);
}

static void
fill_barrier_cb(void *arg, int rc)
{
	int *out = arg;

	*out = rc;
}

static int
fill_samples(const char *path, unsigned k, uint64_t start_ms, uint64_t end_ms)
{
	static const char *const statuses[] = { "sent", "deferred", "bounced" };
	struct buf addr = BUF_INIT;
	FILE *fp = fopen(path, "w");
	unsigned i;

	if (fp == NULL) {
		fprintf(stderr, "bench_log_fill: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < k; i++) {
		fill_rcpt(i % 2 ? (unsigned)fill_below(FILL_RCPTS_HOT) :
		    FILL_RCPTS_HOT + (unsigned)fill_below(FILL_RCPTS - FILL_RCPTS_HOT), &addr);
		fprintf(fp, "to %s\n", addr.ptr);
	}
	for (i = 0; i < k; i++) {
		const char *w;

		switch (fill_below(5)) {
		case 0: w = FILL_PICK(fill_common); break;
		case 1: w = FILL_PICK(fill_first); break;
		case 2: w = FILL_PICK(fill_city); break;
		default: w = FILL_PICK(fill_topic); break;
		}
		fprintf(fp, "q %s\n", w);
	}
	for (i = 0; i < k; i++) {
		uint64_t len_s = 3600 + fill_below(7 * 86400 - 3600);
		uint64_t span_s = (end_ms - start_ms) / 1000;
		uint64_t since_s = start_ms / 1000 + fill_below(span_s > len_s ? span_s - len_s : 1);

		fprintf(fp, "range %s %llu %llu\n", FILL_PICK(statuses),
		    (unsigned long long)since_s, (unsigned long long)(since_s + len_s));
	}
	buf_fini(&addr);
	if (fclose(fp) != 0) {
		fprintf(stderr, "bench_log_fill: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
fill_usage(void)
{
	fprintf(stderr, "usage: bench_log_fill [-n MESSAGES] [-d DAYS] [-k SAMPLES]"
	    " [-o SAMPLEFILE] STATE_DIR\n");
	exit(64);
}

static double
fill_mono_s(void)
{
	return (double)clock_mono_ms() / 1000.0;
}

int
main(int argc, char **argv)
{
	uint64_t n = 1000000, days = 30, k = 200, i, now_ms, start_ms, step_ms;
	const char *samples = NULL;
	struct buf sample_path = BUF_INIT, from = BUF_INIT, rcpt = BUF_INIT, subject = BUF_INIT,
		   client = BUF_INIT;
	struct hk_err err = { 0 };
	struct id_gen gen;
	struct jobs *hub;
	struct maillog *ml;
	double t0;
	int c, barrier_rc = 1;

	while ((c = getopt(argc, argv, "n:d:k:o:")) != -1) {
		switch (c) {
		case 'n':
			if (num_parse_u64z(optarg, 100000000, &n) == -1 || n == 0)
				fill_usage();
			break;
		case 'd':
			if (num_parse_u64z(optarg, 3650, &days) == -1 || days == 0)
				fill_usage();
			break;
		case 'k':
			if (num_parse_u64z(optarg, 1000000, &k) == -1)
				fill_usage();
			break;
		case 'o':
			samples = optarg;
			break;
		default:
			fill_usage();
		}
	}
	if (optind + 1 != argc)
		fill_usage();
	hk_loop_thread_set();
	if (samples == NULL) {
		buf_printf(&sample_path, "%s/samples.txt", argv[optind]);
		samples = sample_path.ptr;
	}

	hub = jobs_new();
	ml = maillog_open(argv[optind], hub, &err);
	if (ml == NULL) {
		fprintf(stderr, "bench_log_fill: %s\n", err.text);
		return 1;
	}
	/* The last message an hour ago, so the newest mail is not in the future of a query. */
	now_ms = clock_now_ms() - 3600000;
	start_ms = now_ms - days * FILL_DAY_MS;
	step_ms = days * FILL_DAY_MS / n;
	id_gen_init(&gen, 1);
	t0 = fill_mono_s();
	for (i = 0; i < n; i++) {
		uint64_t t = start_ms + i * step_ms + (step_ms > 1 ? fill_below(step_ms) : 0);
		uint64_t delay = 200 + fill_below(4800);
		const struct fill_outcome *o = fill_pick_outcome();
		struct spool_rcpt r = { 0 };
		struct spool_env env = { 0 };
		struct maillog_attempt a = { 0 };
		unsigned up = (unsigned)fill_below(10);
		char addr_text[32];

		buf_reset(&from);
		buf_printf(&from, "%s@%s", FILL_PICK(fill_sender_local),
		    FILL_PICK(fill_sender_domain));
		fill_rcpt(fill_pick_rcpt(), &rcpt);
		fill_subject(&subject);
		buf_reset(&client);
		buf_printf(&client, "10.0.%u.%u", (unsigned)fill_below(4), 10u +
		    (unsigned)fill_below(40));

		r.addr = rcpt.ptr;
		r.state = SPOOL_RCPT_QUEUED;
		env.id = id_gen_next(&gen, t);
		env.received_ms = t;
		env.from = from.ptr;
		env.source = fill_below(4) == 0 ? "api" : "smtp";
		env.listener = "127.0.0.1:25";
		env.client = client.ptr;
		env.helo = "app1.example.com";
		env.size = 1500 + fill_below(60000);
		env.rcpts = &r;
		env.n_rcpts = 1;
		maillog_received(ml, &env, subject.ptr);

		snprintf(addr_text, sizeof(addr_text), "192.0.2.%u", 1u + up);
		a.id = env.id;
		a.time_ms = t + delay;
		a.rcpt = rcpt.ptr;
		a.upstream = up < 7 ? "primary" : up < 9 ? "backup" : "mx";
		a.remote_host = up < 7 ? "smtp.provider.example" : up < 9 ? "smtp.other.example" :
		    "mx1.example.net";
		a.remote_addr = addr_text;
		a.tls = "TLSv1.3:TLS_AES_256_GCM_SHA384";
		a.code = o->code;
		a.enhanced = o->enhanced;
		a.text = o->text;
		a.duration_ms = 40 + fill_below(900);
		a.result = o->result;
		maillog_attempt(ml, &a);
		maillog_status(ml, env.id, rcpt.ptr, o->ev, t + delay + 1, o->text);

		fill_wait(hub, ml, FILL_PENDING_MAX);
		if ((i + 1) % 100000 == 0)
			fprintf(stderr, "bench_log_fill: %llu messages, %.1f s\n",
			    (unsigned long long)(i + 1), fill_mono_s() - t0);
	}
	maillog_barrier(ml, fill_barrier_cb, &barrier_rc);
	while (barrier_rc == 1)
		jobs_wait_completions(hub);
	fprintf(stderr, "bench_log_fill: %llu messages, %llu events written in %.1f s\n",
	    (unsigned long long)n, (unsigned long long)n * 3, fill_mono_s() - t0);
	if (maillog_dropped(ml) > 0 || barrier_rc != 0) {
		fprintf(stderr, "bench_log_fill: %llu events were lost\n",
		    (unsigned long long)maillog_dropped(ml));
		maillog_close(ml);
		jobs_free(hub);
		return 1;
	}
	maillog_close(ml);
	jobs_free(hub);
	if (fill_samples(samples, (unsigned)k, start_ms, now_ms) == -1)
		return 1;
	buf_fini(&sample_path);
	buf_fini(&from);
	buf_fini(&rcpt);
	buf_fini(&subject);
	buf_fini(&client);
	return 0;
}
