/*
 * layer_main.c - linked with one layer library whole-archive and only the libraries that layer
 * may use. Building it is the test: a forbidden call is an undefined symbol.
 */
int main(void);

int
main(void)
{
	return 0;
}
