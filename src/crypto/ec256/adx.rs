//! P-256 Montgomery multiplication with x86-64 `mulx`/`adcx`/`adox` (BMI2 + ADX): the CIOS of
//! [`super::field`] with every word in a register and two independent carry chains per row.
//!
//! Per word b_i: t += a·b_i, then with u = t_0 (−p^−1 ≡ 1 mod 2^64), t = (t + u·p)/2^64. The
//! reduction uses the shape of p: t_0 + u·p_0 = u·2^64 (p_0 = 2^64 − 1), so word 0 vanishes and
//! u itself is carried into word 1; p_2 = 0 needs no product. Six registers hold t (rotated from
//! row to row instead of shifted); one conditional subtraction of p by `cmovc` ends it.

/// One row of CIOS on the six t registers ($t0 .. $t5, $t5 free on entry), word $i of b.
macro_rules! row {
    ($i:literal, $t0:literal, $t1:literal, $t2:literal, $t3:literal, $t4:literal, $t5:literal) => {
        concat!(
            // t += a·b_i: low halves on the OF chain, high halves on the CF chain.
            "mov rdx, qword ptr [{b} + 8*",
            $i,
            "]\n",
            "xor eax, eax\n",
            "mulx r14, r15, qword ptr [{a}]\n",
            "adox ",
            $t0,
            ", r15\n",
            "adcx ",
            $t1,
            ", r14\n",
            "mulx r14, r15, qword ptr [{a} + 8]\n",
            "adox ",
            $t1,
            ", r15\n",
            "adcx ",
            $t2,
            ", r14\n",
            "mulx r14, r15, qword ptr [{a} + 16]\n",
            "adox ",
            $t2,
            ", r15\n",
            "adcx ",
            $t3,
            ", r14\n",
            "mulx r14, r15, qword ptr [{a} + 24]\n",
            "adox ",
            $t3,
            ", r15\n",
            "adcx ",
            $t4,
            ", r14\n",
            "mov ",
            $t5,
            ", 0\n",
            "adox ",
            $t4,
            ", rax\n",
            "adcx ",
            $t5,
            ", rax\n",
            "adox ",
            $t5,
            ", rax\n",
            // u = t_0; t += u·p, word 0 dropped (it is zero), u carried into word 1.
            "mov rdx, ",
            $t0,
            "\n",
            "xor eax, eax\n",
            "adcx ",
            $t1,
            ", ",
            $t0,
            "\n",
            "mov ecx, 0xFFFFFFFF\n",
            "mulx r14, r15, rcx\n",
            "adox ",
            $t1,
            ", r15\n",
            "adcx ",
            $t2,
            ", r14\n",
            "adox ",
            $t2,
            ", rax\n",
            "adcx ",
            $t3,
            ", rax\n",
            "movabs rcx, 0xFFFFFFFF00000001\n",
            "mulx r14, r15, rcx\n",
            "adox ",
            $t3,
            ", r15\n",
            "adcx ",
            $t4,
            ", r14\n",
            "adox ",
            $t4,
            ", rax\n",
            "adcx ",
            $t5,
            ", rax\n",
            "adox ",
            $t5,
            ", rax\n",
        )
    };
}

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
            "xor r8d, r8d",
            "xor r9d, r9d",
            "xor r10d, r10d",
            "xor r11d, r11d",
            "xor r12d, r12d",
            row!(0, "r8", "r9", "r10", "r11", "r12", "r13"),
            row!(1, "r9", "r10", "r11", "r12", "r13", "r8"),
            row!(2, "r10", "r11", "r12", "r13", "r8", "r9"),
            row!(3, "r11", "r12", "r13", "r8", "r9", "r10"),
            // t = (r12, r13, r8, r9, r10) < 2p: t − p, kept unless it borrows.
            "mov rax, r12",
            "mov rdx, r13",
            "mov rcx, r8",
            "mov r14, r9",
            "sub rax, -1",
            "mov r15d, 0xFFFFFFFF",
            "sbb rdx, r15",
            "sbb rcx, 0",
            "movabs r15, 0xFFFFFFFF00000001",
            "sbb r14, r15",
            "sbb r10, 0",
            "cmovc rax, r12",
            "cmovc rdx, r13",
            "cmovc rcx, r8",
            "cmovc r14, r9",
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            out("rax") r0,
            out("rdx") r1,
            out("rcx") r2,
            out("r14") r3,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("r13") _,
            out("r15") _,
            options(pure, readonly, nostack),
        );
    }
    [r0, r1, r2, r3]
}
