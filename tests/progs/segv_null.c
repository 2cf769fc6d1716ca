/* segv_null: print "before", then store through a NULL pointer -> SIGSEGV. */
#include <stdio.h>

int main(void)
{
	printf("before\n");
	fflush(stdout);
	/* A volatile pointer hides the NULL from the compiler (otherwise gcc may
	 * replace the store with ud2, which raises SIGILL instead). */
	volatile int *volatile p = 0;
	*p = 42;
	printf("after\n");
	return 0;
}
