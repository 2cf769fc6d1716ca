/* echo_args: prints argc, argv[], envp[] (in order), and auxv facts that are
 * stable between a native run and a sandboxed one (no addresses). */
#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

/* Defined by crt1.o / rcrt1.o / Scrt1.o in both glibc and musl. */
extern char _start[];
/* Defined by GNU ld when the ELF header is mapped (the default layout). */
extern const Elf64_Ehdr __ehdr_start __attribute__((weak, visibility("hidden")));

static int fails;

static void fail(const char *what)
{
	printf("FAIL %s\n", what);
	fails++;
}

static int valid_ptype(Elf64_Word t)
{
	return t <= PT_TLS || (t >= PT_LOOS && t <= PT_HIOS) ||
	       (t >= PT_LOPROC && t <= PT_HIPROC);
}

int main(int argc, char **argv, char **envp)
{
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	if (argv[argc] != NULL)
		fail("argv not NULL-terminated");

	char **e = envp;
	for (int i = 0; *e; i++, e++)
		printf("env[%d]=%s\n", i, *e);

	/* The raw auxiliary vector starts right after envp's NULL. */
	const Elf64_auxv_t *auxv = (const Elf64_auxv_t *)(e + 1);
	unsigned long raw_pagesz = 0, raw_phnum = 0, raw_execfn = 0, raw_entry = 0;
	int n_aux = 0;
	for (const Elf64_auxv_t *a = auxv; a->a_type != AT_NULL; a++, n_aux++) {
		switch (a->a_type) {
		case AT_PAGESZ: raw_pagesz = a->a_un.a_val; break;
		case AT_PHNUM: raw_phnum = a->a_un.a_val; break;
		case AT_EXECFN: raw_execfn = a->a_un.a_val; break;
		case AT_ENTRY: raw_entry = a->a_un.a_val; break;
		}
		if (n_aux > 1000) {
			fail("auxv not terminated");
			break;
		}
	}

	unsigned long pagesz = getauxval(AT_PAGESZ);
	unsigned long phnum = getauxval(AT_PHNUM);
	unsigned long phent = getauxval(AT_PHENT);
	unsigned long phdr = getauxval(AT_PHDR);
	unsigned long entry = getauxval(AT_ENTRY);
	unsigned long rnd = getauxval(AT_RANDOM);
	unsigned long execfn = getauxval(AT_EXECFN);

	printf("AT_PAGESZ=%lu\n", pagesz);
	printf("AT_PHNUM=%lu\n", phnum);
	printf("AT_PHENT=%lu\n", phent);
	if (raw_pagesz == pagesz && raw_phnum == phnum && raw_execfn == execfn &&
	    raw_entry == entry)
		printf("raw auxv ok\n");
	else
		fail("raw auxv disagrees with getauxval");

	/* AT_PHDR: program headers of this executable, AT_PHNUM of them. */
	if (phdr == 0 || phnum == 0 || phent != sizeof(Elf64_Phdr)) {
		fail("phdr: missing AT_PHDR/AT_PHNUM or bad AT_PHENT");
	} else {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)phdr;
		int ok = valid_ptype(ph[0].p_type);
		int loads = 0;
		for (unsigned long i = 0; i < phnum; i++) {
			if (ph[i].p_type == PT_LOAD)
				loads++;
		}
		ok = ok && loads > 0;
		if (&__ehdr_start != NULL) {
			const Elf64_Ehdr *eh = &__ehdr_start;
			ok = ok && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
			     eh->e_phnum == phnum &&
			     (unsigned long)eh + eh->e_phoff == phdr;
		}
		if (ok)
			printf("phdr ok\n");
		else
			fail("phdr");
	}

	if (entry == (unsigned long)_start)
		printf("entry ok\n");
	else
		fail("entry: AT_ENTRY != _start");

	if (rnd == 0) {
		fail("random: AT_RANDOM missing");
	} else {
		const volatile unsigned char *r = (const unsigned char *)rnd;
		unsigned acc = 0;
		for (int i = 0; i < 16; i++)
			acc |= r[i];
		if (acc)
			printf("random ok\n");
		else
			fail("random: all zero");
	}

	if (execfn != 0 && strcmp((const char *)execfn, argv[0]) == 0)
		printf("execfn ok\n");
	else
		fail("execfn: AT_EXECFN != argv[0]");

	return fails ? 1 : 0;
}
