/* exit_code N [MODE]: exit with status N.
 * MODE: "exit" (default: libc exit(), runs atexit/stdio flush),
 *       "_exit" (_exit(), no flush), "syscall" (raw exit_group syscall). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		static const char usage[] = "usage: exit_code N [exit|_exit|syscall]\n";
		write(2, usage, sizeof usage - 1);
		return 2;
	}
	int n = atoi(argv[1]);
	const char *mode = argc > 2 ? argv[2] : "exit";
	if (strcmp(mode, "exit") == 0)
		exit(n);
	if (strcmp(mode, "_exit") == 0)
		_exit(n);
	if (strcmp(mode, "syscall") == 0) {
		syscall(SYS_exit_group, n);
		return 99; /* unreachable */
	}
	static const char bad[] = "exit_code: unknown mode\n";
	write(2, bad, sizeof bad - 1);
	return 2;
}
