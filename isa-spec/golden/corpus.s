# golden corpus: every row of isa-spec/opcodes.csv with varied operands.
# Assembled by regen.sh with llvm-mc-19 -triple bpfel -mcpu=v4; .quad lines are
# encodings llvm-mc 19 cannot assemble (kfunc and local calls, pseudo lddw with
# a second immediate, packet loads with an offset, load-acquire/store-release).
# Keep it free of labels: objdump would print them as symbols.
	.text
# 32-bit ALU, immediate and register
	w0 += 42
	w0 += w3
	w1 += -65536
	w1 += w10
	w2 += 2147483647
	w2 += w6
	w3 -= 255
	w3 -= w2
	w4 -= 1
	w4 -= w9
	w5 -= -42
	w5 -= w5
	w6 *= 268435456
	w6 *= w1
	w7 *= -2147483648
	w7 *= w8
	w8 *= 65535
	w8 *= w4
	w9 /= -1
	w9 /= w0
	w10 /= 4660
	w10 /= w7
	w0 /= 0
	w0 /= w3
	w1 |= 42
	w1 |= w10
	w2 |= -65536
	w2 |= w6
	w3 |= 2147483647
	w3 |= w2
	w4 &= 255
	w4 &= w9
	w5 &= 1
	w5 &= w5
	w6 &= -42
	w6 &= w1
	w7 <<= 0
	w7 <<= w8
	w8 <<= 0
	w8 <<= w4
	w9 <<= 31
	w9 <<= w0
	w10 >>= 31
	w10 >>= w7
	w0 >>= 20
	w0 >>= w3
	w1 >>= 0
	w1 >>= w10
	w2 %= 42
	w2 %= w6
	w3 %= -65536
	w3 %= w2
	w4 %= 2147483647
	w4 %= w9
	w5 ^= 255
	w5 ^= w5
	w6 ^= 1
	w6 ^= w1
	w7 ^= -42
	w7 ^= w8
	w8 = 268435456
	w8 = w4
	w9 = -2147483648
	w9 = w0
	w10 = 65535
	w10 = w7
	w0 s>>= 31
	w0 s>>= w3
	w1 s>>= 20
	w1 s>>= w10
	w2 s>>= 0
	w2 s>>= w6
	w3 s/= 42
	w3 s/= w2
	w4 s/= -65536
	w4 s/= w9
	w5 s/= 2147483647
	w5 s/= w5
	w6 s%= 255
	w6 s%= w1
	w7 s%= 1
	w7 s%= w8
	w8 s%= -42
	w8 s%= w4
# sign-extending moves and negation
	w0 = (s8)w6
	w0 = (s16)w6
	w0 = -w0
	w1 = (s8)w9
	w1 = (s16)w9
	w1 = -w1
	w2 = (s8)w1
	w2 = (s16)w1
	w2 = -w2
	w3 = (s8)w2
	w3 = (s16)w2
	w3 = -w3
	w4 = (s8)w1
	w4 = (s16)w1
	w4 = -w4
	w5 = (s8)w5
	w5 = (s16)w5
	w5 = -w5
	w6 = (s8)w8
	w6 = (s16)w8
	w6 = -w6
	w7 = (s8)w0
	w7 = (s16)w0
	w7 = -w7
	w8 = (s8)w2
	w8 = (s16)w2
	w8 = -w8
	w9 = (s8)w8
	w9 = (s16)w8
	w9 = -w9
	w10 = (s8)w3
	w10 = (s16)w3
	w10 = -w10
# 64-bit ALU, immediate and register
	r9 += 268435456
	r9 += r0
	r10 += -2147483648
	r10 += r7
	r0 += 65535
	r0 += r3
	r1 -= -1
	r1 -= r10
	r2 -= 4660
	r2 -= r6
	r3 -= 0
	r3 -= r2
	r4 *= 42
	r4 *= r9
	r5 *= -65536
	r5 *= r5
	r6 *= 2147483647
	r6 *= r1
	r7 /= 255
	r7 /= r8
	r8 /= 1
	r8 /= r4
	r9 /= -42
	r9 /= r0
	r10 |= 268435456
	r10 |= r7
	r0 |= -2147483648
	r0 |= r3
	r1 |= 65535
	r1 |= r10
	r2 &= -1
	r2 &= r6
	r3 &= 4660
	r3 &= r2
	r4 &= 0
	r4 &= r9
	r5 <<= 42
	r5 <<= r5
	r6 <<= 0
	r6 <<= r1
	r7 <<= 63
	r7 <<= r8
	r8 >>= 63
	r8 >>= r4
	r9 >>= 1
	r9 >>= r0
	r10 >>= 22
	r10 >>= r7
	r0 %= 268435456
	r0 %= r3
	r1 %= -2147483648
	r1 %= r10
	r2 %= 65535
	r2 %= r6
	r3 ^= -1
	r3 ^= r2
	r4 ^= 4660
	r4 ^= r9
	r5 ^= 0
	r5 ^= r5
	r6 = 42
	r6 = r1
	r7 = -65536
	r7 = r8
	r8 = 2147483647
	r8 = r4
	r9 s>>= 63
	r9 s>>= r0
	r10 s>>= 1
	r10 s>>= r7
	r0 s>>= 22
	r0 s>>= r3
	r1 s/= 268435456
	r1 s/= r10
	r2 s/= -2147483648
	r2 s/= r6
	r3 s/= 65535
	r3 s/= r2
	r4 s%= -1
	r4 s%= r9
	r5 s%= 4660
	r5 s%= r5
	r6 s%= 0
	r6 s%= r1
# sign-extending moves and negation
	r0 = (s8)r7
	r0 = (s16)r7
	r0 = (s32)r7
	r0 = -r0
	r1 = (s8)r3
	r1 = (s16)r3
	r1 = (s32)r3
	r1 = -r1
	r2 = (s8)r6
	r2 = (s16)r6
	r2 = (s32)r6
	r2 = -r2
	r3 = (s8)r0
	r3 = (s16)r0
	r3 = (s32)r0
	r3 = -r3
	r4 = (s8)r4
	r4 = (s16)r4
	r4 = (s32)r4
	r4 = -r4
	r5 = (s8)r0
	r5 = (s16)r0
	r5 = (s32)r0
	r5 = -r5
	r6 = (s8)r8
	r6 = (s16)r8
	r6 = (s32)r8
	r6 = -r6
	r7 = (s8)r0
	r7 = (s16)r0
	r7 = (s32)r0
	r7 = -r7
	r8 = (s8)r7
	r8 = (s16)r7
	r8 = (s32)r7
	r8 = -r8
	r9 = (s8)r0
	r9 = (s16)r0
	r9 = (s32)r0
	r9 = -r9
	r10 = (s8)r10
	r10 = (s16)r10
	r10 = (s32)r10
	r10 = -r10
# byte swaps
	r0 = le16 r0
	r0 = le32 r0
	r0 = le64 r0
	r0 = be16 r0
	r0 = be32 r0
	r0 = be64 r0
	r0 = bswap16 r0
	r0 = bswap32 r0
	r0 = bswap64 r0
	r2 = le32 r2
	r2 = be32 r2
	r2 = bswap32 r2
	r3 = le16 r3
	r3 = le64 r3
	r3 = be16 r3
	r3 = be64 r3
	r3 = bswap16 r3
	r3 = bswap64 r3
	r5 = le32 r5
	r5 = be32 r5
	r5 = bswap32 r5
	r6 = le16 r6
	r6 = le64 r6
	r6 = be16 r6
	r6 = be64 r6
	r6 = bswap16 r6
	r6 = bswap64 r6
	r8 = le32 r8
	r8 = be32 r8
	r8 = bswap32 r8
	r9 = le16 r9
	r9 = le64 r9
	r9 = be16 r9
	r9 = be64 r9
	r9 = bswap16 r9
	r9 = bswap64 r9
	r10 = le16 r10
	r10 = le32 r10
	r10 = le64 r10
	r10 = be16 r10
	r10 = be32 r10
	r10 = be64 r10
	r10 = bswap16 r10
	r10 = bswap32 r10
	r10 = bswap64 r10
# lddw
	r0 = 0x0 ll
	r0 = 0x1 ll
	r0 = 0x123456789abcdef0 ll
	r0 = -0x1 ll
	r0 = 0x8000000000000000 ll
	r0 = 0x7fffffff ll
	r0 = 0x100000000 ll
	r0 = -0x80000001 ll
	r1 = -0x1 ll
	r1 = 0x7fffffff ll
	r1 = -0x80000001 ll
	r3 = 0x1 ll
	r4 = 0x0 ll
	r4 = 0x123456789abcdef0 ll
	r4 = 0x8000000000000000 ll
	r4 = 0x100000000 ll
	r5 = -0x1 ll
	r5 = 0x7fffffff ll
	r5 = -0x80000001 ll
	r7 = 0x1 ll
	r8 = 0x0 ll
	r8 = 0x123456789abcdef0 ll
	r8 = 0x8000000000000000 ll
	r8 = 0x100000000 ll
	r9 = -0x1 ll
	r9 = 0x7fffffff ll
	r9 = -0x80000001 ll
# pseudo lddw: src 1..6
	ld_pseudo r0, 1, 2147483647
	ld_pseudo r1, 1, 0
	ld_pseudo r9, 1, 0
	ld_pseudo r10, 1, 0
	.quad 0x0000000500001318
	.quad 0xfffffff000000000
	ld_pseudo r0, 2, 2147483647
	ld_pseudo r1, 2, 17
	ld_pseudo r9, 2, 17
	ld_pseudo r10, 2, 2147483647
	.quad 0x0000000500002318
	.quad 0xfffffff000000000
	ld_pseudo r0, 3, 2147483647
	ld_pseudo r1, 3, 2147483647
	ld_pseudo r9, 3, 3
	ld_pseudo r10, 3, 3
	.quad 0x0000000500003318
	.quad 0xfffffff000000000
	ld_pseudo r0, 4, 2147483647
	ld_pseudo r1, 4, 17
	ld_pseudo r9, 4, 17
	ld_pseudo r10, 4, 0
	.quad 0x0000000500004318
	.quad 0xfffffff000000000
	ld_pseudo r0, 5, 0
	ld_pseudo r1, 5, -1
	ld_pseudo r9, 5, 0
	ld_pseudo r10, 5, 2147483647
	.quad 0x0000000500005318
	.quad 0xfffffff000000000
	ld_pseudo r0, 6, 3
	ld_pseudo r1, 6, 17
	ld_pseudo r9, 6, 0
	ld_pseudo r10, 6, 17
	.quad 0x0000000500006318
	.quad 0xfffffff000000000
# legacy packet loads
	r0 = *(u32 *)skb[0]
	r0 = *(u32 *)skb[4]
	r0 = *(u32 *)skb[-1]
	r0 = *(u32 *)skb[2147483647]
	r0 = *(u16 *)skb[0]
	r0 = *(u16 *)skb[4]
	r0 = *(u16 *)skb[-1]
	r0 = *(u16 *)skb[2147483647]
	r0 = *(u8 *)skb[0]
	r0 = *(u8 *)skb[4]
	r0 = *(u8 *)skb[-1]
	r0 = *(u8 *)skb[2147483647]
	r0 = *(u32 *)skb[r0]
	r0 = *(u32 *)skb[r1]
	r0 = *(u32 *)skb[r7]
	r0 = *(u32 *)skb[r10]
	.quad 0x0000000c00002040
	.quad 0xfffffffc00009040
	r0 = *(u16 *)skb[r0]
	r0 = *(u16 *)skb[r1]
	r0 = *(u16 *)skb[r7]
	r0 = *(u16 *)skb[r10]
	.quad 0x0000000c00002048
	.quad 0xfffffffc00009048
	r0 = *(u8 *)skb[r0]
	r0 = *(u8 *)skb[r1]
	r0 = *(u8 *)skb[r7]
	r0 = *(u8 *)skb[r10]
	.quad 0x0000000c00002050
	.quad 0xfffffffc00009050
# loads, stores
	r0 = *(u8 *)(r1 + 0)
	w0 = *(u8 *)(r1 + 0)
	r0 = *(s8 *)(r1 + 0)
	*(u8 *)(r0 + 0) = 0
	*(u8 *)(r0 + 0) = r1
	*(u8 *)(r0 + 0) = w1
	r1 = *(u8 *)(r4 + 4)
	w1 = *(u8 *)(r4 + 4)
	r1 = *(s8 *)(r4 + 4)
	*(u8 *)(r1 + 4) = 1
	*(u8 *)(r1 + 4) = r4
	*(u8 *)(r1 + 4) = w4
	r2 = *(u8 *)(r7 - 8)
	w2 = *(u8 *)(r7 - 8)
	r2 = *(s8 *)(r7 - 8)
	*(u8 *)(r2 - 8) = -1
	*(u8 *)(r2 - 8) = r7
	*(u8 *)(r2 - 8) = w7
	r3 = *(u8 *)(r10 + 32767)
	w3 = *(u8 *)(r10 + 32767)
	r3 = *(s8 *)(r10 + 32767)
	*(u8 *)(r3 + 32767) = 2147483647
	*(u8 *)(r3 + 32767) = r10
	*(u8 *)(r3 + 32767) = w10
	r4 = *(u8 *)(r2 - 32768)
	w4 = *(u8 *)(r2 - 32768)
	r4 = *(s8 *)(r2 - 32768)
	*(u8 *)(r4 - 32768) = -2147483648
	*(u8 *)(r4 - 32768) = r2
	*(u8 *)(r4 - 32768) = w2
	r5 = *(u8 *)(r5 + 1)
	w5 = *(u8 *)(r5 + 1)
	r5 = *(s8 *)(r5 + 1)
	*(u8 *)(r5 + 1) = 42
	*(u8 *)(r5 + 1) = r5
	*(u8 *)(r5 + 1) = w5
	r6 = *(u8 *)(r8 - 1)
	w6 = *(u8 *)(r8 - 1)
	r6 = *(s8 *)(r8 - 1)
	*(u8 *)(r6 - 1) = -42
	*(u8 *)(r6 - 1) = r8
	*(u8 *)(r6 - 1) = w8
	r7 = *(u8 *)(r0 + 16)
	w7 = *(u8 *)(r0 + 16)
	r7 = *(s8 *)(r0 + 16)
	*(u8 *)(r7 + 16) = 4660
	*(u8 *)(r7 + 16) = r0
	*(u8 *)(r7 + 16) = w0
	r8 = *(u8 *)(r3 - 512)
	w8 = *(u8 *)(r3 - 512)
	r8 = *(s8 *)(r3 - 512)
	*(u8 *)(r8 - 512) = 255
	*(u8 *)(r8 - 512) = r3
	*(u8 *)(r8 - 512) = w3
	r9 = *(u8 *)(r6 + 100)
	w9 = *(u8 *)(r6 + 100)
	r9 = *(s8 *)(r6 + 100)
	*(u8 *)(r9 + 100) = 65535
	*(u8 *)(r9 + 100) = r6
	*(u8 *)(r9 + 100) = w6
	r10 = *(u8 *)(r9 + 0)
	w10 = *(u8 *)(r9 + 0)
	r10 = *(s8 *)(r9 + 0)
	*(u8 *)(r10 + 0) = -65536
	*(u8 *)(r10 + 0) = r9
	*(u8 *)(r10 + 0) = w9
	r0 = *(u16 *)(r1 + 0)
	w0 = *(u16 *)(r1 + 0)
	r0 = *(s16 *)(r1 + 0)
	*(u16 *)(r0 + 0) = 0
	*(u16 *)(r0 + 0) = r1
	*(u16 *)(r0 + 0) = w1
	r1 = *(u16 *)(r4 + 4)
	w1 = *(u16 *)(r4 + 4)
	r1 = *(s16 *)(r4 + 4)
	*(u16 *)(r1 + 4) = 1
	*(u16 *)(r1 + 4) = r4
	*(u16 *)(r1 + 4) = w4
	r2 = *(u16 *)(r7 - 8)
	w2 = *(u16 *)(r7 - 8)
	r2 = *(s16 *)(r7 - 8)
	*(u16 *)(r2 - 8) = -1
	*(u16 *)(r2 - 8) = r7
	*(u16 *)(r2 - 8) = w7
	r3 = *(u16 *)(r10 + 32767)
	w3 = *(u16 *)(r10 + 32767)
	r3 = *(s16 *)(r10 + 32767)
	*(u16 *)(r3 + 32767) = 2147483647
	*(u16 *)(r3 + 32767) = r10
	*(u16 *)(r3 + 32767) = w10
	r4 = *(u16 *)(r2 - 32768)
	w4 = *(u16 *)(r2 - 32768)
	r4 = *(s16 *)(r2 - 32768)
	*(u16 *)(r4 - 32768) = -2147483648
	*(u16 *)(r4 - 32768) = r2
	*(u16 *)(r4 - 32768) = w2
	r5 = *(u16 *)(r5 + 1)
	w5 = *(u16 *)(r5 + 1)
	r5 = *(s16 *)(r5 + 1)
	*(u16 *)(r5 + 1) = 42
	*(u16 *)(r5 + 1) = r5
	*(u16 *)(r5 + 1) = w5
	r6 = *(u16 *)(r8 - 1)
	w6 = *(u16 *)(r8 - 1)
	r6 = *(s16 *)(r8 - 1)
	*(u16 *)(r6 - 1) = -42
	*(u16 *)(r6 - 1) = r8
	*(u16 *)(r6 - 1) = w8
	r7 = *(u16 *)(r0 + 16)
	w7 = *(u16 *)(r0 + 16)
	r7 = *(s16 *)(r0 + 16)
	*(u16 *)(r7 + 16) = 4660
	*(u16 *)(r7 + 16) = r0
	*(u16 *)(r7 + 16) = w0
	r8 = *(u16 *)(r3 - 512)
	w8 = *(u16 *)(r3 - 512)
	r8 = *(s16 *)(r3 - 512)
	*(u16 *)(r8 - 512) = 255
	*(u16 *)(r8 - 512) = r3
	*(u16 *)(r8 - 512) = w3
	r9 = *(u16 *)(r6 + 100)
	w9 = *(u16 *)(r6 + 100)
	r9 = *(s16 *)(r6 + 100)
	*(u16 *)(r9 + 100) = 65535
	*(u16 *)(r9 + 100) = r6
	*(u16 *)(r9 + 100) = w6
	r10 = *(u16 *)(r9 + 0)
	w10 = *(u16 *)(r9 + 0)
	r10 = *(s16 *)(r9 + 0)
	*(u16 *)(r10 + 0) = -65536
	*(u16 *)(r10 + 0) = r9
	*(u16 *)(r10 + 0) = w9
	r0 = *(u32 *)(r1 + 0)
	w0 = *(u32 *)(r1 + 0)
	r0 = *(s32 *)(r1 + 0)
	*(u32 *)(r0 + 0) = 0
	*(u32 *)(r0 + 0) = r1
	*(u32 *)(r0 + 0) = w1
	r1 = *(u32 *)(r4 + 4)
	w1 = *(u32 *)(r4 + 4)
	r1 = *(s32 *)(r4 + 4)
	*(u32 *)(r1 + 4) = 1
	*(u32 *)(r1 + 4) = r4
	*(u32 *)(r1 + 4) = w4
	r2 = *(u32 *)(r7 - 8)
	w2 = *(u32 *)(r7 - 8)
	r2 = *(s32 *)(r7 - 8)
	*(u32 *)(r2 - 8) = -1
	*(u32 *)(r2 - 8) = r7
	*(u32 *)(r2 - 8) = w7
	r3 = *(u32 *)(r10 + 32767)
	w3 = *(u32 *)(r10 + 32767)
	r3 = *(s32 *)(r10 + 32767)
	*(u32 *)(r3 + 32767) = 2147483647
	*(u32 *)(r3 + 32767) = r10
	*(u32 *)(r3 + 32767) = w10
	r4 = *(u32 *)(r2 - 32768)
	w4 = *(u32 *)(r2 - 32768)
	r4 = *(s32 *)(r2 - 32768)
	*(u32 *)(r4 - 32768) = -2147483648
	*(u32 *)(r4 - 32768) = r2
	*(u32 *)(r4 - 32768) = w2
	r5 = *(u32 *)(r5 + 1)
	w5 = *(u32 *)(r5 + 1)
	r5 = *(s32 *)(r5 + 1)
	*(u32 *)(r5 + 1) = 42
	*(u32 *)(r5 + 1) = r5
	*(u32 *)(r5 + 1) = w5
	r6 = *(u32 *)(r8 - 1)
	w6 = *(u32 *)(r8 - 1)
	r6 = *(s32 *)(r8 - 1)
	*(u32 *)(r6 - 1) = -42
	*(u32 *)(r6 - 1) = r8
	*(u32 *)(r6 - 1) = w8
	r7 = *(u32 *)(r0 + 16)
	w7 = *(u32 *)(r0 + 16)
	r7 = *(s32 *)(r0 + 16)
	*(u32 *)(r7 + 16) = 4660
	*(u32 *)(r7 + 16) = r0
	*(u32 *)(r7 + 16) = w0
	r8 = *(u32 *)(r3 - 512)
	w8 = *(u32 *)(r3 - 512)
	r8 = *(s32 *)(r3 - 512)
	*(u32 *)(r8 - 512) = 255
	*(u32 *)(r8 - 512) = r3
	*(u32 *)(r8 - 512) = w3
	r9 = *(u32 *)(r6 + 100)
	w9 = *(u32 *)(r6 + 100)
	r9 = *(s32 *)(r6 + 100)
	*(u32 *)(r9 + 100) = 65535
	*(u32 *)(r9 + 100) = r6
	*(u32 *)(r9 + 100) = w6
	r10 = *(u32 *)(r9 + 0)
	w10 = *(u32 *)(r9 + 0)
	r10 = *(s32 *)(r9 + 0)
	*(u32 *)(r10 + 0) = -65536
	*(u32 *)(r10 + 0) = r9
	*(u32 *)(r10 + 0) = w9
	r0 = *(u64 *)(r1 + 0)
	*(u64 *)(r0 + 0) = 0
	*(u64 *)(r0 + 0) = r1
	r1 = *(u64 *)(r4 + 4)
	*(u64 *)(r1 + 4) = 1
	*(u64 *)(r1 + 4) = r4
	r2 = *(u64 *)(r7 - 8)
	*(u64 *)(r2 - 8) = -1
	*(u64 *)(r2 - 8) = r7
	r3 = *(u64 *)(r10 + 32767)
	*(u64 *)(r3 + 32767) = 2147483647
	*(u64 *)(r3 + 32767) = r10
	r4 = *(u64 *)(r2 - 32768)
	*(u64 *)(r4 - 32768) = -2147483648
	*(u64 *)(r4 - 32768) = r2
	r5 = *(u64 *)(r5 + 1)
	*(u64 *)(r5 + 1) = 42
	*(u64 *)(r5 + 1) = r5
	r6 = *(u64 *)(r8 - 1)
	*(u64 *)(r6 - 1) = -42
	*(u64 *)(r6 - 1) = r8
	r7 = *(u64 *)(r0 + 16)
	*(u64 *)(r7 + 16) = 4660
	*(u64 *)(r7 + 16) = r0
	r8 = *(u64 *)(r3 - 512)
	*(u64 *)(r8 - 512) = 255
	*(u64 *)(r8 - 512) = r3
	r9 = *(u64 *)(r6 + 100)
	*(u64 *)(r9 + 100) = 65535
	*(u64 *)(r9 + 100) = r6
	r10 = *(u64 *)(r9 + 0)
	*(u64 *)(r10 + 0) = -65536
	*(u64 *)(r10 + 0) = r9
# atomics
	lock *(u32 *)(r0 + 32767) += w2
	w2 = atomic_fetch_add((u32 *)(r0 + 32767), w2)
	w2 = xchg32_32(r0 + 32767, w2)
	w0 = cmpxchg32_32(r0 + 32767, w0, w2)
	lock *(u32 *)(r1 - 32768) |= w7
	w7 = atomic_fetch_or((u32 *)(r1 - 32768), w7)
	w7 = xchg32_32(r1 - 32768, w7)
	w0 = cmpxchg32_32(r1 - 32768, w0, w7)
	lock *(u32 *)(r2 + 1) &= w1
	w1 = atomic_fetch_and((u32 *)(r2 + 1), w1)
	w1 = xchg32_32(r2 + 1, w1)
	w0 = cmpxchg32_32(r2 + 1, w0, w1)
	lock *(u32 *)(r3 - 1) ^= w6
	w6 = atomic_fetch_xor((u32 *)(r3 - 1), w6)
	w6 = xchg32_32(r3 - 1, w6)
	w0 = cmpxchg32_32(r3 - 1, w0, w6)
	lock *(u32 *)(r4 + 16) += w0
	w0 = atomic_fetch_add((u32 *)(r4 + 16), w0)
	w0 = xchg32_32(r4 + 16, w0)
	w0 = cmpxchg32_32(r4 + 16, w0, w0)
	lock *(u32 *)(r5 - 512) |= w5
	w5 = atomic_fetch_or((u32 *)(r5 - 512), w5)
	w5 = xchg32_32(r5 - 512, w5)
	w0 = cmpxchg32_32(r5 - 512, w0, w5)
	lock *(u32 *)(r6 + 100) &= w10
	w10 = atomic_fetch_and((u32 *)(r6 + 100), w10)
	w10 = xchg32_32(r6 + 100, w10)
	w0 = cmpxchg32_32(r6 + 100, w0, w10)
	lock *(u32 *)(r7 + 0) ^= w4
	w4 = atomic_fetch_xor((u32 *)(r7 + 0), w4)
	w4 = xchg32_32(r7 + 0, w4)
	w0 = cmpxchg32_32(r7 + 0, w0, w4)
	lock *(u32 *)(r8 + 4) += w9
	w9 = atomic_fetch_add((u32 *)(r8 + 4), w9)
	w9 = xchg32_32(r8 + 4, w9)
	w0 = cmpxchg32_32(r8 + 4, w0, w9)
	lock *(u32 *)(r9 - 8) |= w3
	w3 = atomic_fetch_or((u32 *)(r9 - 8), w3)
	w3 = xchg32_32(r9 - 8, w3)
	w0 = cmpxchg32_32(r9 - 8, w0, w3)
	lock *(u32 *)(r10 + 32767) &= w8
	w8 = atomic_fetch_and((u32 *)(r10 + 32767), w8)
	w8 = xchg32_32(r10 + 32767, w8)
	w0 = cmpxchg32_32(r10 + 32767, w0, w8)
	lock *(u32 *)(r1 + 8) += w2
	lock *(u32 *)(r1 + 8) |= w2
	lock *(u32 *)(r1 + 8) &= w2
	lock *(u32 *)(r1 + 8) ^= w2
	w3 = atomic_fetch_add((u32 *)(r10 - 16), w3)
	w3 = atomic_fetch_or((u32 *)(r10 - 16), w3)
	w3 = atomic_fetch_and((u32 *)(r10 - 16), w3)
	w3 = atomic_fetch_xor((u32 *)(r10 - 16), w3)
	lock *(u64 *)(r0 + 32767) += r2
	r2 = atomic_fetch_add((u64 *)(r0 + 32767), r2)
	r2 = xchg_64(r0 + 32767, r2)
	r0 = cmpxchg_64(r0 + 32767, r0, r2)
	lock *(u64 *)(r1 - 32768) |= r7
	r7 = atomic_fetch_or((u64 *)(r1 - 32768), r7)
	r7 = xchg_64(r1 - 32768, r7)
	r0 = cmpxchg_64(r1 - 32768, r0, r7)
	lock *(u64 *)(r2 + 1) &= r1
	r1 = atomic_fetch_and((u64 *)(r2 + 1), r1)
	r1 = xchg_64(r2 + 1, r1)
	r0 = cmpxchg_64(r2 + 1, r0, r1)
	lock *(u64 *)(r3 - 1) ^= r6
	r6 = atomic_fetch_xor((u64 *)(r3 - 1), r6)
	r6 = xchg_64(r3 - 1, r6)
	r0 = cmpxchg_64(r3 - 1, r0, r6)
	lock *(u64 *)(r4 + 16) += r0
	r0 = atomic_fetch_add((u64 *)(r4 + 16), r0)
	r0 = xchg_64(r4 + 16, r0)
	r0 = cmpxchg_64(r4 + 16, r0, r0)
	lock *(u64 *)(r5 - 512) |= r5
	r5 = atomic_fetch_or((u64 *)(r5 - 512), r5)
	r5 = xchg_64(r5 - 512, r5)
	r0 = cmpxchg_64(r5 - 512, r0, r5)
	lock *(u64 *)(r6 + 100) &= r10
	r10 = atomic_fetch_and((u64 *)(r6 + 100), r10)
	r10 = xchg_64(r6 + 100, r10)
	r0 = cmpxchg_64(r6 + 100, r0, r10)
	lock *(u64 *)(r7 + 0) ^= r4
	r4 = atomic_fetch_xor((u64 *)(r7 + 0), r4)
	r4 = xchg_64(r7 + 0, r4)
	r0 = cmpxchg_64(r7 + 0, r0, r4)
	lock *(u64 *)(r8 + 4) += r9
	r9 = atomic_fetch_add((u64 *)(r8 + 4), r9)
	r9 = xchg_64(r8 + 4, r9)
	r0 = cmpxchg_64(r8 + 4, r0, r9)
	lock *(u64 *)(r9 - 8) |= r3
	r3 = atomic_fetch_or((u64 *)(r9 - 8), r3)
	r3 = xchg_64(r9 - 8, r3)
	r0 = cmpxchg_64(r9 - 8, r0, r3)
	lock *(u64 *)(r10 + 32767) &= r8
	r8 = atomic_fetch_and((u64 *)(r10 + 32767), r8)
	r8 = xchg_64(r10 + 32767, r8)
	r0 = cmpxchg_64(r10 + 32767, r0, r8)
	lock *(u64 *)(r1 + 8) += r2
	lock *(u64 *)(r1 + 8) |= r2
	lock *(u64 *)(r1 + 8) &= r2
	lock *(u64 *)(r1 + 8) ^= r2
	r3 = atomic_fetch_add((u64 *)(r10 - 16), r3)
	r3 = atomic_fetch_or((u64 *)(r10 - 16), r3)
	r3 = atomic_fetch_and((u64 *)(r10 - 16), r3)
	r3 = atomic_fetch_xor((u64 *)(r10 - 16), r3)
# load-acquire, store-release (Linux extension; LLVM 19 cannot print them)
	.quad 0x00000100000010d3
	.quad 0x00000110000010d3
	.quad 0x00000100fff8a5d3
	.quad 0x00000110fff8a5d3
	.quad 0x000001007fff29d3
	.quad 0x000001107fff29d3
	.quad 0x00000100000010cb
	.quad 0x00000110000010cb
	.quad 0x00000100fff8a5cb
	.quad 0x00000110fff8a5cb
	.quad 0x000001007fff29cb
	.quad 0x000001107fff29cb
	.quad 0x00000100000010c3
	.quad 0x00000110000010c3
	.quad 0x00000100fff8a5c3
	.quad 0x00000110fff8a5c3
	.quad 0x000001007fff29c3
	.quad 0x000001107fff29c3
	.quad 0x00000100000010db
	.quad 0x00000110000010db
	.quad 0x00000100fff8a5db
	.quad 0x00000110fff8a5db
	.quad 0x000001007fff29db
	.quad 0x000001107fff29db
# jumps
	if r0 == 0 goto +3
	if r0 == r5 goto +3
	if r1 > 1 goto -1
	if r1 > r9 goto -1
	if r2 >= -1 goto +0
	if r2 >= r2 goto +0
	if r3 & 2147483647 goto +32767
	if r3 & r6 goto +32767
	if r4 != -2147483648 goto -32768
	if r4 != r10 goto -32768
	if r5 s> 42 goto +100
	if r5 s> r3 goto +100
	if r6 s>= -42 goto +3
	if r6 s>= r7 goto +3
	if r7 < 4660 goto -1
	if r7 < r0 goto -1
	if r8 <= 255 goto +0
	if r8 <= r4 goto +0
	if r9 s< 65535 goto +32767
	if r9 s< r8 goto +32767
	if r10 s<= -65536 goto -32768
	if r10 s<= r1 goto -32768
	if w0 == 0 goto +3
	if w0 == w5 goto +3
	if w1 > 1 goto -1
	if w1 > w9 goto -1
	if w2 >= -1 goto +0
	if w2 >= w2 goto +0
	if w3 & 2147483647 goto +32767
	if w3 & w6 goto +32767
	if w4 != -2147483648 goto -32768
	if w4 != w10 goto -32768
	if w5 s> 42 goto +100
	if w5 s> w3 goto +100
	if w6 s>= -42 goto +3
	if w6 s>= w7 goto +3
	if w7 < 4660 goto -1
	if w7 < w0 goto -1
	if w8 <= 255 goto +0
	if w8 <= w4 goto +0
	if w9 s< 65535 goto +32767
	if w9 s< w8 goto +32767
	if w10 s<= -65536 goto -32768
	if w10 s<= w1 goto -32768
	goto +0
	goto +1
	goto -1
	goto +32767
	goto -32768
	goto -3
	gotol +0
	gotol +5
	gotol -2
	gotol +32767
	.quad 0x0001000000000006
	.quad 0x8000000000000006
	.quad 0x7fffffff00000006
	may_goto +0
	may_goto +2
	may_goto -4
	may_goto +32767
# calls
	call 0
	call 1
	call 5
	call -3
	call 2147483647
	call 212
	.quad 0x0000000100001085
	.quad 0xffffffff00001085
	.quad 0x0000000700001085
	.quad 0xffffff9c00001085
	.quad 0x0000000100002085
	.quad 0x0001234500002085
	.quad 0xfffffffe00002085
	callx r0
	callx r1
	callx r2
	callx r3
	callx r4
	callx r5
	callx r6
	callx r7
	callx r8
	callx r9
	callx r10
	exit
