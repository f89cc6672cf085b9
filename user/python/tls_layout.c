// SPDX-License-Identifier: MIT
#include "python/tls_layout.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <asm/prctl.h>
#endif

/* Bytes above the thread pointer searched for the values: glibc's struct
 * pthread is ~2.3 KiB and specific_1stblock ends near 0x510 in 2.36. */
#define SCAN_BYTES 4096
/* Candidate slots remembered per value (a value may also sit in a register
 * save area or similar). */
#define MAX_HITS 8

unsigned long tls_layout__thread_pointer(void)
{
#if defined(__x86_64__)
	unsigned long fsbase = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fsbase) != 0)
		return 0;
	return fsbase;
#else
	return 0;
#endif
}

/* Reads our own memory without risking SIGSEGV: process_vm_readv stops at the
 * first unmapped page (one remote iovec per page, since it never splits one).
 * Returns the number of bytes read from the start of the range, or -errno. */
static ssize_t read_own_memory(uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote[SCAN_BYTES / 4096 + 2];
	size_t pieces = 0, done = 0;

	if (len > SCAN_BYTES)
		return -EINVAL;
	while (done < len) {
		uint64_t at = addr + done;
		size_t piece = 4096 - (at & 4095);
		if (piece > len - done)
			piece = len - done;
		remote[pieces].iov_base = (void *)(uintptr_t)at;
		remote[pieces].iov_len = piece;
		pieces++;
		done += piece;
	}
	ssize_t n = process_vm_readv(getpid(), &local, 1, remote, pieces, 0);
	return n < 0 ? -errno : n;
}

static int read_word(uint64_t addr, uint64_t *word)
{
	ssize_t n = read_own_memory(addr, word, sizeof(*word));
	if (n < 0)
		return (int)n;
	return n == sizeof(*word) ? 0 : -EFAULT;
}

int tls_layout__verify(const struct py_tls_layout *layout, pthread_key_t key)
{
	uint64_t tp = tls_layout__thread_pointer(), slot;
	void *value;
	int err;

	if (!tp)
		return -ENOTSUP;
	if (key >= TLS_LAYOUT_MAX_KEY)
		return -ERANGE;
	value = pthread_getspecific(key);
	if (!value)
		return -ENODATA;
	err = read_word(tp + layout->specific_1stblock + (uint64_t)key * layout->entry_size +
				layout->data_offset,
			&slot);
	if (err)
		return err;
	return slot == (uint64_t)(uintptr_t)value ? 0 : -EFAULT;
}

/* Offsets (multiples of 8) in window where value occurs; returns the count. */
static size_t find_value(const unsigned char *window, size_t len, uint64_t value, size_t *hits)
{
	size_t count = 0;
	for (size_t off = 0; off + sizeof(value) <= len && count < MAX_HITS; off += sizeof(value)) {
		uint64_t word;
		memcpy(&word, window + off, sizeof(word));
		if (word == value)
			hits[count++] = off;
	}
	return count;
}

/* Tries to explain the slots of keys a and b by one layout; returns 1 with
 * *out filled when consistent with glibc's {seq, data} entries. */
static int fit_layout(const unsigned char *window, size_t len, pthread_key_t a,
		      size_t off_a, pthread_key_t b, size_t off_b, struct py_tls_layout *out)
{
	const uint64_t word = sizeof(void *);
	int64_t delta = (int64_t)off_b - (int64_t)off_a, keys = (int64_t)b - (int64_t)a;

	if (delta % keys)
		return 0;
	int64_t entry = delta / keys;
	if (entry < (int64_t)(2 * word) || entry > 64 || entry % (int64_t)word)
		return 0;
	/* data is the last word of an entry, after the key's sequence number */
	int64_t data_offset = entry - (int64_t)word;
	int64_t first_block = (int64_t)off_a - (int64_t)a * entry - data_offset;
	if (first_block < 0)
		return 0;
	/* glibc marks a key in use by an odd sequence number, which
	 * pthread_setspecific copies into the entry's seq word. */
	pthread_key_t keys_used[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		uint64_t seq_at = (uint64_t)first_block + keys_used[i] * (uint64_t)entry;
		uint64_t seq;
		if (seq_at + word > len)
			return 0;
		memcpy(&seq, window + seq_at, sizeof(seq));
		if (!(seq & 1))
			return 0;
	}
	out->specific_1stblock = (uint32_t)first_block;
	out->entry_size = (uint32_t)entry;
	out->data_offset = (uint32_t)data_offset;
	out->pad = 0;
	return 1;
}

static int calibrate_with(pthread_key_t a, pthread_key_t b, struct py_tls_layout *out)
{
	unsigned char window[SCAN_BYTES];
	size_t hits_a[MAX_HITS], hits_b[MAX_HITS], count_a, count_b;
	struct py_tls_layout found = {0}, candidate;
	int candidates = 0;
	uint64_t tp = tls_layout__thread_pointer();
	/* Values nothing else in struct pthread holds: derived from a stack
	 * address (so not a constant found in .rodata) with high bits set. */
	uint64_t salt = (uint64_t)(uintptr_t)&found;
	uint64_t value_a = salt ^ 0x5a17c0de00000000ULL, value_b = salt ^ 0x3b0d5eed00000000ULL;

	if (!tp || a >= TLS_LAYOUT_MAX_KEY || b >= TLS_LAYOUT_MAX_KEY)
		return -ENOTSUP;
	if (pthread_setspecific(a, (void *)(uintptr_t)value_a) ||
	    pthread_setspecific(b, (void *)(uintptr_t)value_b))
		return -ENOTSUP;
	ssize_t len = read_own_memory(tp, window, sizeof(window));
	if (len <= 0)
		return -ENOTSUP;
	count_a = find_value(window, (size_t)len, value_a, hits_a);
	count_b = find_value(window, (size_t)len, value_b, hits_b);
	for (size_t i = 0; i < count_a; i++)
		for (size_t j = 0; j < count_b; j++)
			if (fit_layout(window, (size_t)len, a, hits_a[i], b, hits_b[j], &candidate)) {
				found = candidate;
				candidates++;
			}
	if (candidates != 1)
		return -ENOTSUP;
	/* Confirm with fresh values, read through the formula itself. */
	if (pthread_setspecific(a, (void *)(uintptr_t)(value_a ^ 0xff0)) ||
	    pthread_setspecific(b, (void *)(uintptr_t)(value_b ^ 0xff0)) ||
	    tls_layout__verify(&found, a) || tls_layout__verify(&found, b))
		return -ENOTSUP;
	*out = found;
	return 0;
}

int tls_layout__calibrate(struct py_tls_layout *out)
{
#if !defined(__GLIBC__) || !defined(__x86_64__)
	(void)out;
	return -ENOTSUP;
#else
	pthread_key_t a, b;
	int err;

	if (pthread_key_create(&a, NULL))
		return -EAGAIN;
	if (pthread_key_create(&b, NULL)) {
		pthread_key_delete(a);
		return -EAGAIN;
	}
	err = calibrate_with(a, b, out);
	pthread_key_delete(b);
	pthread_key_delete(a);
	return err;
#endif
}
