// SPDX-License-Identifier: MIT
#include "formats/protobuf.h"

#include <errno.h>
#include <string.h>

/* Encodes v into buf (PB_MAX_VARINT_LEN bytes) and returns the length. */
static size_t encode_varint(uint8_t *buf, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		buf[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	buf[n++] = (uint8_t)v;
	return n;
}

void pb__put_varint(struct strbuf *sb, uint64_t v)
{
	uint8_t buf[PB_MAX_VARINT_LEN];
	strbuf__append(sb, buf, encode_varint(buf, v));
}

void pb__put_key(struct strbuf *sb, uint32_t field, enum pb_wire_type wire)
{
	pb__put_varint(sb, ((uint64_t)field << 3) | (uint64_t)wire);
}

void pb__put_varint_field(struct strbuf *sb, uint32_t field, uint64_t v)
{
	pb__put_key(sb, field, PB_WIRE_VARINT);
	pb__put_varint(sb, v);
}

void pb__put_bytes_field(struct strbuf *sb, uint32_t field, const void *data, size_t len)
{
	pb__put_key(sb, field, PB_WIRE_LEN);
	pb__put_varint(sb, len);
	if (len)
		strbuf__append(sb, data, len);
}

void pb__put_packed_varints(struct strbuf *sb, uint32_t field, const uint64_t *values,
			    size_t count)
{
	if (!count)
		return;
	size_t mark = pb__begin_message(sb, field);
	for (size_t i = 0; i < count; i++)
		pb__put_varint(sb, values[i]);
	pb__end_message(sb, mark);
}

size_t pb__begin_message(struct strbuf *sb, uint32_t field)
{
	pb__put_key(sb, field, PB_WIRE_LEN);
	size_t mark = sb->len;
	/* One byte covers bodies under 128 bytes, the common case for pprof's
	 * small records; longer bodies are shifted once in pb__end_message(). */
	strbuf__putc(sb, 0);
	return mark;
}

void pb__end_message(struct strbuf *sb, size_t mark)
{
	if (strbuf__error(sb) || mark >= sb->len)
		return;
	size_t body_len = sb->len - mark - 1;
	uint8_t buf[PB_MAX_VARINT_LEN];
	size_t n = encode_varint(buf, body_len);
	if (n > 1) {
		/* Grow by the extra length bytes, then shift the body up. */
		uint8_t pad[PB_MAX_VARINT_LEN] = { 0 };
		strbuf__append(sb, pad, n - 1);
		if (strbuf__error(sb))
			return;
		memmove(sb->data + mark + n, sb->data + mark + 1, body_len);
	}
	memcpy(sb->data + mark, buf, n);
}

void pb__reader_init(struct pb_reader *r, const void *data, size_t len)
{
	r->pos = data;
	r->end = r->pos ? r->pos + len : NULL;
}

int pb__reader_more(const struct pb_reader *r)
{
	return r->pos < r->end;
}

int pb__read_varint(struct pb_reader *r, uint64_t *v)
{
	uint64_t result = 0;
	for (size_t i = 0; i < PB_MAX_VARINT_LEN; i++) {
		if (r->pos >= r->end)
			return -EINVAL;
		uint8_t byte = *r->pos++;
		/* The 10th byte holds only bit 63; anything more overflows. */
		if (i == PB_MAX_VARINT_LEN - 1 && byte > 1)
			return -EINVAL;
		result |= (uint64_t)(byte & 0x7f) << (7 * i);
		if (!(byte & 0x80)) {
			*v = result;
			return 0;
		}
	}
	return -EINVAL;
}

/* Consumes n bytes, or fails without moving when fewer remain. */
static int skip_bytes(struct pb_reader *r, uint64_t n)
{
	if (n > (uint64_t)(r->end - r->pos))
		return -EINVAL;
	r->pos += n;
	return 0;
}

int pb__next_field(struct pb_reader *r, struct pb_field *f)
{
	if (!pb__reader_more(r))
		return 0;
	uint64_t key;
	if (pb__read_varint(r, &key))
		return -EINVAL;
	uint64_t number = key >> 3;
	if (number == 0 || number > PB_MAX_FIELD_NUMBER)
		return -EINVAL;
	f->number = (uint32_t)number;
	f->wire = (enum pb_wire_type)(key & 7);
	f->value = 0;
	f->data = NULL;
	f->len = 0;

	const uint8_t *start = r->pos;
	switch (key & 7) {
	case PB_WIRE_VARINT:
		if (pb__read_varint(r, &f->value))
			return -EINVAL;
		f->data = start;
		f->len = (size_t)(r->pos - start);
		return 1;
	case PB_WIRE_FIXED64:
		if (skip_bytes(r, 8))
			return -EINVAL;
		for (int i = 7; i >= 0; i--)
			f->value = (f->value << 8) | start[i];
		return 1;
	case PB_WIRE_FIXED32:
		if (skip_bytes(r, 4))
			return -EINVAL;
		for (int i = 3; i >= 0; i--)
			f->value = (f->value << 8) | start[i];
		return 1;
	case PB_WIRE_LEN:
		if (pb__read_varint(r, &f->value))
			return -EINVAL;
		f->data = r->pos;
		if (skip_bytes(r, f->value))
			return -EINVAL;
		f->len = (size_t)f->value;
		return 1;
	default:
		return -EINVAL;
	}
}

int pb__field_varints(const struct pb_field *f, struct pb_reader *values)
{
	if (f->wire != PB_WIRE_VARINT && f->wire != PB_WIRE_LEN)
		return -EINVAL;
	pb__reader_init(values, f->data, f->len);
	return 0;
}
