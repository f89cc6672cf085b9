/* demangle.h - turn mangled C++ (Itanium ABI) and legacy Rust symbol names into
 * the names a user recognises ("ns::Klass::method(int)").
 *
 * Uses libstdc++'s __cxa_demangle (the Makefile links -lstdc++). Thread-safe: no
 * shared state.
 */
#ifndef DYNOPROF_DEMANGLE_H
#define DYNOPROF_DEMANGLE_H

/* Returns a malloc'd, NUL-terminated display name for the symbol name: its
 * demangled form when it is a mangled C++/legacy-Rust name that demangles, else a
 * malloc'd copy of name. Legacy Rust hashes ("::h0123456789abcdef") are dropped.
 * The caller frees the result. Returns NULL with errno = ENOMEM on allocation
 * failure, EINVAL when name is NULL. */
char *demangle__symbol(const char *name);

/* Returns 1 when name looks mangled (starts with the Itanium "_Z" prefix, or the
 * "__Z" spelling some toolchains emit), else 0. */
int demangle__is_mangled(const char *name);

#endif
