/* write_n K: K raw write(1, "x", 1) syscalls, then _exit(0). No stdio. */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long k = argc > 1 ? atol(argv[1]) : 0;
	for (long i = 0; i < k; i++) {
		if (write(1, "x", 1) != 1)
			_exit(1);
	}
	_exit(0);
}
