/* main.c - start-up, privileges, signals, wiring. */
#include <stdio.h>

#include "util/common.h"
#include "util/poison.h"

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "hikyaku: not yet\n");
	return 69;
}
