//! P-256 Montgomery multiplication and squaring with x86-64 `mulx`/`adcx`/`adox` (BMI2 + ADX),
//! every intermediate word in a register.
//!
//! **Reduction by p's shape.** With u the lowest word of the running sum t (−p^−1 ≡ 1 mod
//! 2^64), t + u·p is divisible by 2^64, and since p = 2^256 − 2^224 + 2^192 + 2^96 − 1:
//! t_0 + u·(p_0 + p_1·2^64) = u + u·(2^96 − 1) = u·2^96, so word 0 vanishes and only
//! u·2^32 = (u << 32, u >> 32) lands on words 1–2; p_2 = 0; u·p_3 lands on words 3–4 (one
//! `mulx` in [`sqr`]; shifts and a subtraction in [`mul`], see `mul_red`). A step is two
//! shifts, u·p_3 and one carry chain.
//!
//! * [`mul`]: CIOS — per word b_i, t += a·b_i (four `mulx`, the low halves on the OF chain
//!   and the high halves on the CF chain), then one reduction step; t lives in six rotating
//!   registers and stays below 2p, so no row carries out of its five words.
//! * [`sqr`]: the 512-bit square first (six cross products, doubled on the CF chain while the
//!   four diagonal squares enter on the OF chain), then four reduction steps on the low half,
//!   each ending in a fresh word (u·p_3's high word plus a carry, which cannot overflow), and
//!   the high half added at the end: (t_lo + U·p)/2^256 ≤ p and t_hi < p, so the sum is < 2p.
//!
//! Both end with one conditional subtraction of p by `cmovnc`. [`add`] and [`sub`] (field
//! addition and subtraction for both backends) use baseline x86-64 instructions only. No
//! branch, no memory index depends on a value.

/// One CIOS row i ≥ 1: t_i..t_{i+4} += a·b_i ($w0..$w4 are t_i..t_{i+4}). The sum is below
/// (2^64 + 1)·p < 2^320 (t < 2p, a < p), so neither carry chain leaves t_{i+4}.
macro_rules! mul_row {
    ($i:literal, $w0:literal, $w1:literal, $w2:literal, $w3:literal, $w4:literal) => {
        concat!(
            "mov rdx, qword ptr [{b} + 8*",
            $i,
            "]\n",
            "xor {z:e}, {z:e}\n",
            "mulx {hi}, {lo}, qword ptr [{a}]\n",
            "adox ",
            $w0,
            ", {lo}\n",
            "adcx ",
            $w1,
            ", {hi}\n",
            "mulx {hi}, {lo}, qword ptr [{a} + 8]\n",
            "adox ",
            $w1,
            ", {lo}\n",
            "adcx ",
            $w2,
            ", {hi}\n",
            "mulx {hi}, {lo}, qword ptr [{a} + 16]\n",
            "adox ",
            $w2,
            ", {lo}\n",
            "adcx ",
            $w3,
            ", {hi}\n",
            "mulx {hi}, {lo}, qword ptr [{a} + 24]\n",
            "adox ",
            $w3,
            ", {lo}\n",
            "adcx ",
            $w4,
            ", {hi}\n",
            "adox ",
            $w4,
            ", {z}\n",
        )
    };
}

/// One reduction step of [`mul`]: u = $w0 (t_i); t_{i+1}..t_{i+4} += u·2^32 + u·p_3·2^128,
/// the carry into a fresh t_{i+5} ($w5). u·p_3 = u·2^64 − u·2^32 + u is formed without a
/// multiplication from s = u << 32 and r = u >> 32 (both needed anyway): its low word is u − s,
/// its high word u − r − borrow (measured faster here than `mulx` by p_3).
macro_rules! mul_red {
    ($w0:literal, $w1:literal, $w2:literal, $w3:literal, $w4:literal, $w5:literal) => {
        concat!(
            "mov {z}, ",
            $w0,
            "\n",
            "shl {z}, 32\n",
            "mov rdx, ",
            $w0,
            "\n",
            "shr rdx, 32\n",
            "mov {lo}, ",
            $w0,
            "\n",
            "sub {lo}, {z}\n",
            "mov {hi}, ",
            $w0,
            "\n",
            "sbb {hi}, rdx\n",
            "xor ",
            $w5,
            ", ",
            $w5,
            "\n",
            "add ",
            $w1,
            ", {z}\n",
            "adc ",
            $w2,
            ", rdx\n",
            "adc ",
            $w3,
            ", {lo}\n",
            "adc ",
            $w4,
            ", {hi}\n",
            "adc ",
            $w5,
            ", 0\n",
        )
    };
}

/// `mov` of t (five words, $t0..$t4) minus p into $s0..$s3, then `cmovnc`: t − p where it does
/// not borrow. $t4 is clobbered; $p1 must hold p_1 = 2^32 − 1 and {p3} p_3.
macro_rules! final_sub {
    ($t0:literal, $t1:literal, $t2:literal, $t3:literal, $t4:literal,
     $s0:literal, $s1:literal, $s2:literal, $s3:literal, $p1:literal) => {
        concat!(
            "mov ", $s0, ", ", $t0, "\n", "mov ", $s1, ", ", $t1, "\n", "mov ", $s2, ", ", $t2,
            "\n", "mov ", $s3, ", ", $t3, "\n", "sub ", $s0, ", -1\n", "sbb ", $s1, ", ", $p1,
            "\n", "sbb ", $s2, ", 0\n", "sbb ", $s3, ", {p3}\n", "sbb ", $t4, ", 0\n", "cmovnc ",
            $t0, ", ", $s0, "\n", "cmovnc ", $t1, ", ", $s1, "\n", "cmovnc ", $t2, ", ", $s2, "\n",
            "cmovnc ", $t3, ", ", $s3, "\n",
        )
    };
}

/// p_3 = 2^64 − 2^32 + 1.
const P3: u64 = 0xFFFF_FFFF_0000_0001;

/// a·b·2^−256 mod p for a, b < p.
///
/// # Safety
/// The CPU must support BMI2 (`mulx`) and ADX (`adcx`, `adox`).
#[inline(always)]
pub(crate) unsafe fn mul(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let (r0, r1, r2, r3): (u64, u64, u64, u64);
    // SAFETY: reads a[0..4] and b[0..4] only; writes only the declared registers and the
    // flags; no stack use. The caller guarantees the instructions exist.
    unsafe {
        core::arch::asm!(
            // Row 0 into t0..t4 (w0..w4), plain carry chain.
            "mov rdx, qword ptr [{b}]",
            "mulx {w1}, {w0}, qword ptr [{a}]",
            "mulx {w2}, {lo}, qword ptr [{a} + 8]",
            "add {w1}, {lo}",
            "mulx {w3}, {hi}, qword ptr [{a} + 16]",
            "adc {w2}, {hi}",
            "mulx {w4}, {lo}, qword ptr [{a} + 24]",
            "adc {w3}, {lo}",
            "adc {w4}, 0",
            mul_red!("{w0}", "{w1}", "{w2}", "{w3}", "{w4}", "{w5}"),
            mul_row!(1, "{w1}", "{w2}", "{w3}", "{w4}", "{w5}"),
            mul_red!("{w1}", "{w2}", "{w3}", "{w4}", "{w5}", "{w0}"),
            mul_row!(2, "{w2}", "{w3}", "{w4}", "{w5}", "{w0}"),
            mul_red!("{w2}", "{w3}", "{w4}", "{w5}", "{w0}", "{w1}"),
            mul_row!(3, "{w3}", "{w4}", "{w5}", "{w0}", "{w1}"),
            mul_red!("{w3}", "{w4}", "{w5}", "{w0}", "{w1}", "{w2}"),
            // t = (w4, w5, w0, w1, w2) < 2p.
            "mov {z:e}, 0xFFFFFFFF",
            final_sub!("{w4}", "{w5}", "{w0}", "{w1}", "{w2}", "{hi}", "{lo}", "rdx", "{w3}", "{z}"),
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            p3 = in(reg) P3,
            w0 = out(reg) r2,
            w1 = out(reg) r3,
            w2 = out(reg) _,
            w3 = out(reg) _,
            w4 = out(reg) r0,
            w5 = out(reg) r1,
            hi = out(reg) _,
            lo = out(reg) _,
            z = out(reg) _,
            out("rdx") _,
            options(pure, readonly, nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// One reduction step of [`sqr`] on the low half: u = $u; $w1, $w2, $w3 += u·2^32 and
/// u·p_3's low word with carries; u·p_3's high word plus the carry becomes the fresh word
/// $new (it is at most 2^64 − 2^32 + 1: no overflow). $u is free afterwards.
macro_rules! sqr_red {
    ($u:literal, $w1:literal, $w2:literal, $w3:literal, $new:literal) => {
        concat!(
            "mov rdx, ",
            $u,
            "\n",
            "mulx ",
            $new,
            ", {lo}, {p3}\n",
            "mov {s}, ",
            $u,
            "\n",
            "shl {s}, 32\n",
            "shr ",
            $u,
            ", 32\n",
            "add ",
            $w1,
            ", {s}\n",
            "adc ",
            $w2,
            ", ",
            $u,
            "\n",
            "adc ",
            $w3,
            ", {lo}\n",
            "adc ",
            $new,
            ", 0\n",
        )
    };
}

/// a²·2^−256 mod p for a < p.
///
/// # Safety
/// The CPU must support BMI2 (`mulx`) and ADX (`adcx`, `adox`).
#[inline(always)]
pub(crate) unsafe fn sqr(a: &[u64; 4]) -> [u64; 4] {
    let (r0, r1, r2, r3): (u64, u64, u64, u64);
    // SAFETY: reads a[0..4] only; writes only the declared registers and the flags; no
    // stack use. The caller guarantees the instructions exist.
    unsafe {
        core::arch::asm!(
            // Cross products a_i·a_j (i < j) into t1..t6.
            "mov rdx, qword ptr [{a}]",
            "mulx {t2}, {t1}, qword ptr [{a} + 8]",
            "mulx {t3}, {lo}, qword ptr [{a} + 16]",
            "add {t2}, {lo}",
            "mulx {t4}, {lo}, qword ptr [{a} + 24]",
            "adc {t3}, {lo}",
            "adc {t4}, 0",
            "mov rdx, qword ptr [{a} + 8]",
            "xor {t7:e}, {t7:e}",
            "mulx {s}, {lo}, qword ptr [{a} + 16]",
            "adox {t3}, {lo}",
            "adcx {t4}, {s}",
            "mulx {t5}, {lo}, qword ptr [{a} + 24]",
            "adox {t4}, {lo}",
            "adcx {t5}, {t7}",
            "adox {t5}, {t7}",
            "mov rdx, qword ptr [{a} + 16]",
            "mulx {t6}, {lo}, qword ptr [{a} + 24]",
            "add {t5}, {lo}",
            "adc {t6}, 0",
            // Doubled on the CF chain, diagonal squares on the OF chain (t7 = 0 clears both).
            "mov rdx, qword ptr [{a}]",
            "xor {t7:e}, {t7:e}",
            "mulx {s}, {t0}, rdx",
            "adcx {t1}, {t1}",
            "adox {t1}, {s}",
            "mov rdx, qword ptr [{a} + 8]",
            "mulx {s}, {lo}, rdx",
            "adcx {t2}, {t2}",
            "adox {t2}, {lo}",
            "adcx {t3}, {t3}",
            "adox {t3}, {s}",
            "mov rdx, qword ptr [{a} + 16]",
            "mulx {s}, {lo}, rdx",
            "adcx {t4}, {t4}",
            "adox {t4}, {lo}",
            "adcx {t5}, {t5}",
            "adox {t5}, {s}",
            "mov rdx, qword ptr [{a} + 24]",
            "mulx {s}, {lo}, rdx",
            "adcx {t6}, {t6}",
            "adox {t6}, {lo}",
            "adcx {t7}, {t7}",
            "adox {t7}, {s}",
            // Reduce the low half t0..t3 into fresh words n4..n7 ({a} is free now: n4).
            sqr_red!("{t0}", "{t1}", "{t2}", "{t3}", "{a}"),
            sqr_red!("{t1}", "{t2}", "{t3}", "{a}", "{t0}"),
            sqr_red!("{t2}", "{t3}", "{a}", "{t0}", "{t1}"),
            sqr_red!("{t3}", "{a}", "{t0}", "{t1}", "{t2}"),
            // + the high half: (t4..t7) + (a, t0, t1, t2), carry into t3.
            "xor {t3:e}, {t3:e}",
            "add {t4}, {a}",
            "adc {t5}, {t0}",
            "adc {t6}, {t1}",
            "adc {t7}, {t2}",
            "adc {t3}, 0",
            "mov {s:e}, 0xFFFFFFFF",
            final_sub!("{t4}", "{t5}", "{t6}", "{t7}", "{t3}", "{a}", "{t0}", "{t1}", "{t2}", "{s}"),
            a = inout(reg) a.as_ptr() => _,
            p3 = in(reg) P3,
            t0 = out(reg) _,
            t1 = out(reg) _,
            t2 = out(reg) _,
            t3 = out(reg) _,
            t4 = out(reg) r0,
            t5 = out(reg) r1,
            t6 = out(reg) r2,
            t7 = out(reg) r3,
            s = out(reg) _,
            lo = out(reg) _,
            out("rdx") _,
            options(pure, readonly, nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// a + b mod p for a, b < p: add with carry, subtract p, keep the sum where that borrows
/// (`cmovnc` takes the difference where it does not). Baseline x86-64 instructions only (no
/// CPU feature needed).
#[inline(always)]
pub(crate) fn add(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let [mut r0, mut r1, mut r2, mut r3] = *a;
    // SAFETY: registers and flags only; baseline x86-64 instructions.
    unsafe {
        core::arch::asm!(
            "xor {c:e}, {c:e}",
            "add {r0}, {b0}",
            "adc {r1}, {b1}",
            "adc {r2}, {b2}",
            "adc {r3}, {b3}",
            "adc {c}, 0",
            "mov {b0}, {r0}",
            "mov {b1}, {r1}",
            "mov {b2}, {r2}",
            "mov {b3}, {r3}",
            "sub {b0}, -1",
            "sbb {b1}, {p1}",
            "sbb {b2}, 0",
            "sbb {b3}, {p3}",
            "sbb {c}, 0",
            "cmovnc {r0}, {b0}",
            "cmovnc {r1}, {b1}",
            "cmovnc {r2}, {b2}",
            "cmovnc {r3}, {b3}",
            r0 = inout(reg) r0,
            r1 = inout(reg) r1,
            r2 = inout(reg) r2,
            r3 = inout(reg) r3,
            b0 = inout(reg) b[0] => _,
            b1 = inout(reg) b[1] => _,
            b2 = inout(reg) b[2] => _,
            b3 = inout(reg) b[3] => _,
            p1 = in(reg) 0xFFFF_FFFFu64,
            p3 = in(reg) P3,
            c = out(reg) _,
            options(pure, nomem, nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// a − b mod p for a, b < p: subtract with borrow, then add p masked by the borrow
/// (p_0 = 2^64 − 1, p_1 = 2^32 − 1, p_2 = 0, p_3 = 2^64 − 2^32 + 1 under an all-ones or zero
/// mask). Baseline x86-64 instructions only.
#[inline(always)]
pub(crate) fn sub(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let [mut r0, mut r1, mut r2, mut r3] = *a;
    // SAFETY: registers and flags only; baseline x86-64 instructions.
    unsafe {
        core::arch::asm!(
            "sub {r0}, {b0}",
            "sbb {r1}, {b1}",
            "sbb {r2}, {b2}",
            "sbb {r3}, {b3}",
            // m = −borrow; p masked: (m, m >> 32, 0, m & p_3).
            "sbb {b0}, {b0}",
            "mov {b1}, {b0}",
            "shr {b1}, 32",
            "mov {b3}, {b0}",
            "and {b3}, {p3}",
            "add {r0}, {b0}",
            "adc {r1}, {b1}",
            "adc {r2}, 0",
            "adc {r3}, {b3}",
            r0 = inout(reg) r0,
            r1 = inout(reg) r1,
            r2 = inout(reg) r2,
            r3 = inout(reg) r3,
            b0 = inout(reg) b[0] => _,
            b1 = inout(reg) b[1] => _,
            b2 = in(reg) b[2],
            b3 = inout(reg) b[3] => _,
            p3 = in(reg) P3,
            options(pure, nomem, nostack),
        );
    }
    [r0, r1, r2, r3]
}
