/* demangle.c - symbol demangling via libstdc++'s __cxa_demangle. */
#include "symbolize/demangle.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Provided by libstdc++ (extern "C" in <cxxabi.h>); declared here because this
 * is a C translation unit. Returns a malloc'd string or NULL; *status is 0 on
 * success, -1 out of memory, -2 not a valid mangled name, -3 bad argument. */
extern char *__cxa_demangle(const char *mangled_name, char *output_buffer,
			    size_t *length, int *status);

int demangle__is_mangled(const char *name)
{
	if (!name)
		return 0;
	return strncmp(name, "_Z", 2) == 0 || strncmp(name, "__Z", 3) == 0;
}

/* Legacy Rust symbols are Itanium-mangled paths whose last component is a
 * 17-character "h<16 hex digits>" hash; users never want to see it. Cuts it off
 * in place when present. */
static void strip_rust_hash(char *demangled)
{
	size_t len = strlen(demangled);
	const size_t hash_len = 3 + 16; /* "::h" + 16 hex digits */

	if (len <= hash_len)
		return;
	char *hash = demangled + len - hash_len;
	if (strncmp(hash, "::h", 3) != 0)
		return;
	for (size_t i = 3; i < hash_len; i++)
		if (!isxdigit((unsigned char)hash[i]))
			return;
	*hash = '\0';
}

char *demangle__symbol(const char *name)
{
	if (!name) {
		errno = EINVAL;
		return NULL;
	}
	if (demangle__is_mangled(name)) {
		/* "__Z" is the Mach-O spelling; __cxa_demangle wants "_Z". */
		const char *itanium = name[1] == '_' ? name + 1 : name;
		int status = 0;
		char *demangled = __cxa_demangle(itanium, NULL, NULL, &status);

		if (status == 0 && demangled) {
			/* A "_ZN...17h<hash>E" path is legacy Rust; C++ never ends that way
			 * after demangling because C++ functions carry a parameter list. */
			if (strncmp(itanium, "_ZN", 3) == 0 && !strchr(demangled, '('))
				strip_rust_hash(demangled);
			return demangled;
		}
		free(demangled);
		if (status == -1) {
			errno = ENOMEM;
			return NULL;
		}
	}
	char *copy = strdup(name);

	if (!copy)
		errno = ENOMEM;
	return copy;
}
