/* hello: the smallest stdio program. Output goes through stdio buffering, so
 * with stdout on a pipe it is one write(1, ..., 14) at exit. */
#include <stdio.h>

int main(void)
{
	printf("Hello, world!\n");
	return 0;
}
