/* test_id.c - time-ordered queue IDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/id.h"
#include "util/poison.h"

#define T0 (ID_EPOCH_MS + 1000000ULL) /* some wall-clock time after the ID epoch */

static unsigned
id_seq(uint64_t id)
{
	return (unsigned)(id & 0xfff);
}

static unsigned
id_node(uint64_t id)
{
	return (unsigned)((id >> 12) & 0xff);
}

static void
test_id_layout(void **state)
{
	struct id_gen g;
	uint64_t id;

	(void)state;
	id_gen_init(&g, 7);
	id = id_gen_next(&g, T0);
	assert_true(id == ((1000000ULL << 20) | (7u << 12) | 0));
	assert_true(id_time_ms(id) == T0);
	assert_int_equal(id_node(id), 7);
	assert_int_equal(id_seq(id), 0);
	/* The same millisecond advances the sequence. */
	id = id_gen_next(&g, T0);
	assert_int_equal(id_seq(id), 1);
	assert_true(id_time_ms(id) == T0);
	/* A later millisecond restarts it. */
	id = id_gen_next(&g, T0 + 5);
	assert_int_equal(id_seq(id), 0);
	assert_true(id_time_ms(id) == T0 + 5);
}

static void
test_id_node_is_8_bits(void **state)
{
	struct id_gen g;
	uint64_t id;

	(void)state;
	id_gen_init(&g, 0x1ff);
	id = id_gen_next(&g, T0);
	assert_int_equal(id_node(id), 0xff);
	assert_true(id_time_ms(id) == T0);
}

static void
test_id_format_parse(void **state)
{
	char hex[ID_HEX_LEN + 1];
	uint64_t id;

	(void)state;
	id_format(0x0193F2A1C4000007ULL, hex);
	assert_string_equal(hex, "0193F2A1C4000007");
	assert_int_equal(id_parse(hex, strlen(hex), &id), 0);
	assert_true(id == 0x0193F2A1C4000007ULL);
	id_format(0, hex);
	assert_string_equal(hex, "0000000000000000");
	id_format(UINT64_MAX, hex);
	assert_string_equal(hex, "FFFFFFFFFFFFFFFF");
	assert_int_equal(id_parse(hex, 16, &id), 0);
	assert_true(id == UINT64_MAX);
	/* Either case is accepted (API paths), exactly 16 digits. */
	assert_int_equal(id_parse("0193f2a1c4000007", 16, &id), 0);
	assert_true(id == 0x0193F2A1C4000007ULL);
	assert_int_equal(id_parse("0193F2A1C400000", 15, &id), -1);
	assert_int_equal(id_parse("0193F2A1C40000070", 17, &id), -1);
	assert_int_equal(id_parse("0193F2A1C400000G", 16, &id), -1);
	assert_int_equal(id_parse("0193F2A1C400000 ", 16, &id), -1);
	assert_int_equal(id_parse("../../etc/passwd", 16, &id), -1);
	assert_int_equal(id_parse("", 0, &id), -1);
}

static void
test_id_format_sorts_like_numbers(void **state)
{
	struct id_gen g;
	char a[ID_HEX_LEN + 1], b[ID_HEX_LEN + 1];
	uint64_t prev, id;
	int i;

	(void)state;
	id_gen_init(&g, 1);
	prev = id_gen_next(&g, T0);
	for (i = 1; i < 5000; i++) {
		id = id_gen_next(&g, T0 + (uint64_t)(i / 3));
		id_format(prev, a);
		id_format(id, b);
		assert_true(strcmp(a, b) < 0);
		prev = id;
	}
}

static void
test_id_clock_backwards_stays_monotonic(void **state)
{
	struct id_gen g;
	uint64_t a, b, c, d;

	(void)state;
	id_gen_init(&g, 3);
	a = id_gen_next(&g, T0 + 100);
	/* The clock steps back a whole second: reuse the last millisecond. */
	b = id_gen_next(&g, T0 - 900);
	c = id_gen_next(&g, T0 + 100);
	d = id_gen_next(&g, T0 + 101);
	assert_true(a < b);
	assert_true(b < c);
	assert_true(c < d);
	assert_true(id_time_ms(b) == T0 + 100);
	assert_int_equal(id_seq(b), 1);
	assert_int_equal(id_seq(c), 2);
	assert_int_equal(id_seq(d), 0);
}

/* A clock before the ID epoch (badly wrong) still never goes back. */
static void
test_id_before_epoch(void **state)
{
	struct id_gen g;
	uint64_t a, b, c;

	(void)state;
	id_gen_init(&g, 0);
	a = id_gen_next(&g, 0);
	b = id_gen_next(&g, 1000);
	c = id_gen_next(&g, T0);
	assert_true(a < b);
	assert_true(b < c);
	assert_true(a != 0);
}

static void
test_id_sequence_exhaustion_borrows_next_ms(void **state)
{
	struct id_gen g;
	uint64_t prev, id;
	unsigned i;

	(void)state;
	id_gen_init(&g, 9);
	prev = id_gen_next(&g, T0);
	for (i = 1; i < 4096; i++) {
		id = id_gen_next(&g, T0);
		assert_true(id > prev);
		assert_int_equal(id_seq(id), i);
		prev = id;
	}
	/* 4096 IDs in one millisecond: the next one borrows T0 + 1. */
	id = id_gen_next(&g, T0);
	assert_true(id > prev);
	assert_true(id_time_ms(id) == T0 + 1);
	assert_int_equal(id_seq(id), 0);
	assert_int_equal(id_node(id), 9);
	/* The real clock reaching T0 + 1 continues after the borrowed ID. */
	prev = id;
	id = id_gen_next(&g, T0 + 1);
	assert_true(id > prev);
	assert_int_equal(id_seq(id), 1);
	/* Borrowing continues while the clock stands still. */
	for (i = 0; i < 10000; i++) {
		prev = id;
		id = id_gen_next(&g, T0);
		assert_true(id > prev);
	}
	assert_true(id_time_ms(id) > T0 + 1);
}

static void
test_id_observe_same_node(void **state)
{
	struct id_gen g, old;
	uint64_t seen, id;

	(void)state;
	/* A spool written a minute "in the future" (clock fixed since): IDs stay above it. */
	id_gen_init(&old, 4);
	seen = id_gen_next(&old, T0 + 60000);
	seen = id_gen_next(&old, T0 + 60000);
	id_gen_init(&g, 4);
	id_gen_observe(&g, seen);
	id = id_gen_next(&g, T0);
	assert_true(id > seen);
	/* Observing an older ID changes nothing. */
	id_gen_observe(&g, seen - 1);
	id_gen_observe(&g, 1);
	assert_true(id_gen_next(&g, T0) > id);
}

static void
test_id_observe_other_node(void **state)
{
	struct id_gen g, other;
	uint64_t seen, id;
	unsigned node;

	(void)state;
	/* A spool moved from another node (or a node id change): higher and lower nodes. */
	for (node = 0; node < 256; node += 17) {
		id_gen_init(&other, node);
		seen = id_gen_next(&other, T0 + 5000);
		id_gen_init(&g, 8);
		id_gen_observe(&g, seen);
		id = id_gen_next(&g, T0);
		assert_true(id > seen);
		assert_int_equal(id_node(id), 8);
		assert_true(id_gen_next(&g, T0 + 5000) > id);
	}
}

static void
test_id_observe_max_sequence(void **state)
{
	struct id_gen g;
	uint64_t seen, id;

	(void)state;
	id_gen_init(&g, 2);
	seen = ((uint64_t)(T0 - ID_EPOCH_MS) << 20) | (2u << 12) | 0xfff;
	id_gen_observe(&g, seen);
	id = id_gen_next(&g, T0);
	assert_true(id > seen);
	assert_true(id_time_ms(id) == T0 + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_layout),
		cmocka_unit_test(test_id_node_is_8_bits),
		cmocka_unit_test(test_id_format_parse),
		cmocka_unit_test(test_id_format_sorts_like_numbers),
		cmocka_unit_test(test_id_clock_backwards_stays_monotonic),
		cmocka_unit_test(test_id_before_epoch),
		cmocka_unit_test(test_id_sequence_exhaustion_borrows_next_ms),
		cmocka_unit_test(test_id_observe_same_node),
		cmocka_unit_test(test_id_observe_other_node),
		cmocka_unit_test(test_id_observe_max_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
