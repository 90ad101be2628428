//! Prime fields for SAKKE parameter set 1 (RFC 6509 Appendix A, used by RFC 6508 Appendix A).
//!
//! * [`Fp`] — the 1024-bit base field F_p, p ≡ 3 mod 4 (RFC 6508 §2.1: the curve and F_p² live here);
//! * [`Fq`] — the scalar field F_q, q = (p + 1)/4 the 1022-bit order of P (RFC 6508 §2.1, §6.1.1:
//!   (a + z_T)^-1 is taken modulo q).
//!
//! Both are crypto-bigint 0.7 `ConstMontyForm`s: the modulus is fixed at compile time, inversion
//! is crypto-bigint's constant-time safegcd; products and squares are the specialised 16-limb
//! Montgomery multiplication of [`mont`] (AVX-512 IFMA, else x86-64 `mulx`/`adcx`/`adox`, when
//! the CPU has them), equal to crypto-bigint's; `Fp::mul_n` runs independent products
//! together; additions, subtractions, doublings and negations are the
//! branch-free [`add_mod`] and [`sub_mod`] (`adc`/`sbb` chains on x86-64, word loops
//! elsewhere), equal to crypto-bigint's too. Every
//! operation here is constant-time in the values; the only `*_vartime` function is
//! [`Fp::invert_vartime`]. Conditional selection and equality work on the Montgomery words with
//! masks so that table scans in [`super::curve`] stay branch-free.

#[cfg(target_arch = "x86_64")]
mod ifma;
pub mod mont;

use crypto_bigint::{const_monty_params, modular::ConstMontyForm, Uint, U1024};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};

/// Number of 64-bit words in a field element.
pub const LIMBS: usize = U1024::LIMBS;
/// Octets in the big-endian encoding of an F_p element (RFC 6508 §2.1: L = 128 for set 1).
pub const FP_BYTES: usize = 128;

/// p of parameter set 1 (RFC 6509 App. A), big-endian hex.
pub const P_HEX: &str = "997ABB1F0A563FDA65C61198DAD0657A416C0CE19CB48261BE9AE358B3E01A2EF40AAB27E2FC0F1B228730D531A59CB0E791B39FF7C88A19356D27F4A666A6D0E26C6487326B4CD4512AC5CD65681CE1B6AFF4A831852A82A7CF3C521C3C09AA9F94D6AF56971F1FFCE3E82389857DB080C5DF10AC7ACE87666D807AFEA85FEB";
/// q of parameter set 1 (RFC 6509 App. A), big-endian hex.
pub const Q_HEX: &str = "265EAEC7C2958FF69971846636B4195E905B0338672D20986FA6B8D62CF8068BBD02AAC9F8BF03C6C8A1CC354C69672C39E46CE7FDF222864D5B49FD2999A9B4389B1921CC9AD335144AB173595A07386DABFD2A0C614AA0A9F3CF14870F026AA7E535ABD5A5C7C7FF38FA08E2615F6C203177C42B1EB3A1D99B601EBFAA17FB";

const_monty_params!(PModulus, U1024, P_HEX, "The SAKKE parameter set 1 prime p");
const_monty_params!(
    QModulus,
    U1024,
    Q_HEX,
    "The SAKKE parameter set 1 group order q"
);

type PMonty = ConstMontyForm<PModulus, LIMBS>;
type QMonty = ConstMontyForm<QModulus, LIMBS>;

/// The modulus p as an integer.
pub const P: U1024 = U1024::from_be_hex(P_HEX);
/// The group order q as an integer.
pub const Q: U1024 = U1024::from_be_hex(Q_HEX);

/// p and q with their Montgomery constants, for [`mont`].
const P_MONT: mont::Modulus = mont::Modulus::new(*P.as_words());
const Q_MONT: mont::Modulus = mont::Modulus::new(*Q.as_words());

/// Branch-free word-wise select: `b` where `choice` is set, else `a`.
#[inline(always)]
pub(crate) fn select_words(a: &[u64; LIMBS], b: &[u64; LIMBS], choice: Choice) -> [u64; LIMBS] {
    let mask = 0u64.wrapping_sub(u64::from(choice.unwrap_u8()));
    let mut out = [0u64; LIMBS];
    for i in 0..LIMBS {
        out[i] = a[i] ^ (mask & (a[i] ^ b[i]));
    }
    out
}

/// Branch-free equality of two word arrays.
#[inline(always)]
fn words_eq(a: &[u64; LIMBS], b: &[u64; LIMBS]) -> Choice {
    let mut acc = 0u64;
    for i in 0..LIMBS {
        acc |= a[i] ^ b[i];
    }
    // acc == 0 <=> equal; fold to one bit without branching.
    let nz = (acc | acc.wrapping_neg()) >> 63;
    Choice::from((nz ^ 1) as u8)
}

/// (a + b) mod m for a, b < m < 2^1024, branch-free: the sum (17 words), then the sum minus
/// m, kept unless it borrows. Several times faster than crypto-bigint's `ConstMontyForm`
/// addition here (which the Miller loop and the point formulas call a dozen times a step).
#[inline(always)]
fn add_mod(a: &[u64; LIMBS], b: &[u64; LIMBS], m: &[u64; LIMBS]) -> [u64; LIMBS] {
    #[cfg(target_arch = "x86_64")]
    {
        x86::add_mod(a, b, m)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        add_mod_portable(a, b, m)
    }
}

/// (a − b) mod m for a, b < m (see [`sub_mod_portable`]).
#[inline(always)]
fn sub_mod(a: &[u64; LIMBS], b: &[u64; LIMBS], m: &[u64; LIMBS]) -> [u64; LIMBS] {
    #[cfg(target_arch = "x86_64")]
    {
        x86::sub_mod(a, b, m)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        sub_mod_portable(a, b, m)
    }
}

/// [`add_mod`] in portable Rust.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn add_mod_portable(a: &[u64; LIMBS], b: &[u64; LIMBS], m: &[u64; LIMBS]) -> [u64; LIMBS] {
    let mut s = [0u64; LIMBS];
    let mut carry = false;
    for i in 0..LIMBS {
        let (t, c1) = a[i].overflowing_add(b[i]);
        let (t, c2) = t.overflowing_add(u64::from(carry));
        s[i] = t;
        carry = c1 | c2;
    }
    let mut d = [0u64; LIMBS];
    let mut borrow = false;
    for i in 0..LIMBS {
        let (t, b1) = s[i].overflowing_sub(m[i]);
        let (t, b2) = t.overflowing_sub(u64::from(borrow));
        d[i] = t;
        borrow = b1 | b2;
    }
    // s + carry·2^1024 − m < 0 iff the 17th word underflows: carry − borrow < 0.
    let (_, under) = u64::from(carry).overflowing_sub(u64::from(borrow));
    // Through `black_box`, as in `mont::final_sub`: a known 0-or-all-ones mask would let LLVM
    // turn the select into a branch.
    let keep_s = core::hint::black_box(0u64.wrapping_sub(u64::from(under)));
    let mut out = [0u64; LIMBS];
    for i in 0..LIMBS {
        out[i] = (s[i] & keep_s) | (d[i] & !keep_s);
    }
    out
}

/// (a − b) mod m for a, b < m, branch-free: the difference, plus m masked by its borrow.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn sub_mod_portable(a: &[u64; LIMBS], b: &[u64; LIMBS], m: &[u64; LIMBS]) -> [u64; LIMBS] {
    let mut d = [0u64; LIMBS];
    let mut borrow = false;
    for i in 0..LIMBS {
        let (t, b1) = a[i].overflowing_sub(b[i]);
        let (t, b2) = t.overflowing_sub(u64::from(borrow));
        d[i] = t;
        borrow = b1 | b2;
    }
    let mask = core::hint::black_box(0u64.wrapping_sub(u64::from(borrow)));
    let mut out = [0u64; LIMBS];
    let mut carry = false;
    for i in 0..LIMBS {
        let (t, c1) = d[i].overflowing_add(m[i] & mask);
        let (t, c2) = t.overflowing_add(u64::from(carry));
        out[i] = t;
        carry = c1 | c2;
    }
    out
}

/// x86-64 versions of [`add_mod`] and [`sub_mod`]: the same computation with `adc`/`sbb` carry
/// chains in `asm!` (RSK validation ran about 7 % faster than with the portable loops; the
/// isolated addition was no faster); the select mask leaves an `asm!` block as an opaque value,
/// so no branch can be made of it.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LIMBS;

    #[inline(always)]
    pub(super) fn add_mod(a: &[u64; LIMBS], b: &[u64; LIMBS], m: &[u64; LIMBS]) -> [u64; LIMBS] {
        let mut s = [0u64; LIMBS];
        let mut d = [0u64; LIMBS];
        let mask: u64;
        // SAFETY: reads a, b, m (16 words each), writes s and d (16 words each); clobbers only
        // the declared registers and the flags.
        unsafe {
            core::arch::asm!(
            "mov {x}, qword ptr [{a} + 0]\nadd {x}, qword ptr [{b} + 0]\nmov qword ptr [{s} + 0], {x}",
            "mov {x}, qword ptr [{a} + 8]\nadc {x}, qword ptr [{b} + 8]\nmov qword ptr [{s} + 8], {x}",
            "mov {x}, qword ptr [{a} + 16]\nadc {x}, qword ptr [{b} + 16]\nmov qword ptr [{s} + 16], {x}",
            "mov {x}, qword ptr [{a} + 24]\nadc {x}, qword ptr [{b} + 24]\nmov qword ptr [{s} + 24], {x}",
            "mov {x}, qword ptr [{a} + 32]\nadc {x}, qword ptr [{b} + 32]\nmov qword ptr [{s} + 32], {x}",
            "mov {x}, qword ptr [{a} + 40]\nadc {x}, qword ptr [{b} + 40]\nmov qword ptr [{s} + 40], {x}",
            "mov {x}, qword ptr [{a} + 48]\nadc {x}, qword ptr [{b} + 48]\nmov qword ptr [{s} + 48], {x}",
            "mov {x}, qword ptr [{a} + 56]\nadc {x}, qword ptr [{b} + 56]\nmov qword ptr [{s} + 56], {x}",
            "mov {x}, qword ptr [{a} + 64]\nadc {x}, qword ptr [{b} + 64]\nmov qword ptr [{s} + 64], {x}",
            "mov {x}, qword ptr [{a} + 72]\nadc {x}, qword ptr [{b} + 72]\nmov qword ptr [{s} + 72], {x}",
            "mov {x}, qword ptr [{a} + 80]\nadc {x}, qword ptr [{b} + 80]\nmov qword ptr [{s} + 80], {x}",
            "mov {x}, qword ptr [{a} + 88]\nadc {x}, qword ptr [{b} + 88]\nmov qword ptr [{s} + 88], {x}",
            "mov {x}, qword ptr [{a} + 96]\nadc {x}, qword ptr [{b} + 96]\nmov qword ptr [{s} + 96], {x}",
            "mov {x}, qword ptr [{a} + 104]\nadc {x}, qword ptr [{b} + 104]\nmov qword ptr [{s} + 104], {x}",
            "mov {x}, qword ptr [{a} + 112]\nadc {x}, qword ptr [{b} + 112]\nmov qword ptr [{s} + 112], {x}",
            "mov {x}, qword ptr [{a} + 120]\nadc {x}, qword ptr [{b} + 120]\nmov qword ptr [{s} + 120], {x}",
            // c = carry out of a + b.
            "mov {c}, 0",
            "adc {c}, 0",
            "mov {x}, qword ptr [{s} + 0]\nsub {x}, qword ptr [{m} + 0]\nmov qword ptr [{d} + 0], {x}",
            "mov {x}, qword ptr [{s} + 8]\nsbb {x}, qword ptr [{m} + 8]\nmov qword ptr [{d} + 8], {x}",
            "mov {x}, qword ptr [{s} + 16]\nsbb {x}, qword ptr [{m} + 16]\nmov qword ptr [{d} + 16], {x}",
            "mov {x}, qword ptr [{s} + 24]\nsbb {x}, qword ptr [{m} + 24]\nmov qword ptr [{d} + 24], {x}",
            "mov {x}, qword ptr [{s} + 32]\nsbb {x}, qword ptr [{m} + 32]\nmov qword ptr [{d} + 32], {x}",
            "mov {x}, qword ptr [{s} + 40]\nsbb {x}, qword ptr [{m} + 40]\nmov qword ptr [{d} + 40], {x}",
            "mov {x}, qword ptr [{s} + 48]\nsbb {x}, qword ptr [{m} + 48]\nmov qword ptr [{d} + 48], {x}",
            "mov {x}, qword ptr [{s} + 56]\nsbb {x}, qword ptr [{m} + 56]\nmov qword ptr [{d} + 56], {x}",
            "mov {x}, qword ptr [{s} + 64]\nsbb {x}, qword ptr [{m} + 64]\nmov qword ptr [{d} + 64], {x}",
            "mov {x}, qword ptr [{s} + 72]\nsbb {x}, qword ptr [{m} + 72]\nmov qword ptr [{d} + 72], {x}",
            "mov {x}, qword ptr [{s} + 80]\nsbb {x}, qword ptr [{m} + 80]\nmov qword ptr [{d} + 80], {x}",
            "mov {x}, qword ptr [{s} + 88]\nsbb {x}, qword ptr [{m} + 88]\nmov qword ptr [{d} + 88], {x}",
            "mov {x}, qword ptr [{s} + 96]\nsbb {x}, qword ptr [{m} + 96]\nmov qword ptr [{d} + 96], {x}",
            "mov {x}, qword ptr [{s} + 104]\nsbb {x}, qword ptr [{m} + 104]\nmov qword ptr [{d} + 104], {x}",
            "mov {x}, qword ptr [{s} + 112]\nsbb {x}, qword ptr [{m} + 112]\nmov qword ptr [{d} + 112], {x}",
            "mov {x}, qword ptr [{s} + 120]\nsbb {x}, qword ptr [{m} + 120]\nmov qword ptr [{d} + 120], {x}",
            // c = carry − borrow: −1 iff s − m < 0 (a carry always comes with a borrow, as
            // a + b < 2m), i.e. the mask that keeps s.
            "sbb {c}, 0",
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            m = in(reg) m.as_ptr(),
            s = in(reg) s.as_mut_ptr(),
            d = in(reg) d.as_mut_ptr(),
            x = out(reg) _,
            c = out(reg) mask,
            options(nostack),
            );
        }
        let mut out = [0u64; LIMBS];
        for i in 0..LIMBS {
            out[i] = d[i] ^ ((s[i] ^ d[i]) & mask);
        }
        out
    }

    #[inline(always)]
    pub(super) fn sub_mod(a: &[u64; LIMBS], b: &[u64; LIMBS], m: &[u64; LIMBS]) -> [u64; LIMBS] {
        let mut d = [0u64; LIMBS];
        let mask: u64;
        // SAFETY: reads a and b, writes d (16 words each); clobbers only the declared
        // registers and the flags.
        unsafe {
            core::arch::asm!(
                "mov {x}, qword ptr [{a} + 0]\nsub {x}, qword ptr [{b} + 0]\nmov qword ptr [{d} + 0], {x}",
                "mov {x}, qword ptr [{a} + 8]\nsbb {x}, qword ptr [{b} + 8]\nmov qword ptr [{d} + 8], {x}",
                "mov {x}, qword ptr [{a} + 16]\nsbb {x}, qword ptr [{b} + 16]\nmov qword ptr [{d} + 16], {x}",
                "mov {x}, qword ptr [{a} + 24]\nsbb {x}, qword ptr [{b} + 24]\nmov qword ptr [{d} + 24], {x}",
                "mov {x}, qword ptr [{a} + 32]\nsbb {x}, qword ptr [{b} + 32]\nmov qword ptr [{d} + 32], {x}",
                "mov {x}, qword ptr [{a} + 40]\nsbb {x}, qword ptr [{b} + 40]\nmov qword ptr [{d} + 40], {x}",
                "mov {x}, qword ptr [{a} + 48]\nsbb {x}, qword ptr [{b} + 48]\nmov qword ptr [{d} + 48], {x}",
                "mov {x}, qword ptr [{a} + 56]\nsbb {x}, qword ptr [{b} + 56]\nmov qword ptr [{d} + 56], {x}",
                "mov {x}, qword ptr [{a} + 64]\nsbb {x}, qword ptr [{b} + 64]\nmov qword ptr [{d} + 64], {x}",
                "mov {x}, qword ptr [{a} + 72]\nsbb {x}, qword ptr [{b} + 72]\nmov qword ptr [{d} + 72], {x}",
                "mov {x}, qword ptr [{a} + 80]\nsbb {x}, qword ptr [{b} + 80]\nmov qword ptr [{d} + 80], {x}",
                "mov {x}, qword ptr [{a} + 88]\nsbb {x}, qword ptr [{b} + 88]\nmov qword ptr [{d} + 88], {x}",
                "mov {x}, qword ptr [{a} + 96]\nsbb {x}, qword ptr [{b} + 96]\nmov qword ptr [{d} + 96], {x}",
                "mov {x}, qword ptr [{a} + 104]\nsbb {x}, qword ptr [{b} + 104]\nmov qword ptr [{d} + 104], {x}",
                "mov {x}, qword ptr [{a} + 112]\nsbb {x}, qword ptr [{b} + 112]\nmov qword ptr [{d} + 112], {x}",
                "mov {x}, qword ptr [{a} + 120]\nsbb {x}, qword ptr [{b} + 120]\nmov qword ptr [{d} + 120], {x}",
                // c = all ones iff a − b borrowed.
                "sbb {c}, {c}",
                a = in(reg) a.as_ptr(),
                b = in(reg) b.as_ptr(),
                d = in(reg) d.as_mut_ptr(),
                x = out(reg) _,
                c = out(reg) mask,
                options(nostack),
            );
        }
        // m & mask outside the carry chain (`and` would clear the carry flag).
        let mut mm = [0u64; LIMBS];
        for i in 0..LIMBS {
            mm[i] = m[i] & mask;
        }
        // SAFETY: reads mm, reads and writes d (16 words each); clobbers only the declared
        // register and the flags.
        unsafe {
            core::arch::asm!(
                "mov {x}, qword ptr [{mm} + 0]\nadd qword ptr [{d} + 0], {x}",
                "mov {x}, qword ptr [{mm} + 8]\nadc qword ptr [{d} + 8], {x}",
                "mov {x}, qword ptr [{mm} + 16]\nadc qword ptr [{d} + 16], {x}",
                "mov {x}, qword ptr [{mm} + 24]\nadc qword ptr [{d} + 24], {x}",
                "mov {x}, qword ptr [{mm} + 32]\nadc qword ptr [{d} + 32], {x}",
                "mov {x}, qword ptr [{mm} + 40]\nadc qword ptr [{d} + 40], {x}",
                "mov {x}, qword ptr [{mm} + 48]\nadc qword ptr [{d} + 48], {x}",
                "mov {x}, qword ptr [{mm} + 56]\nadc qword ptr [{d} + 56], {x}",
                "mov {x}, qword ptr [{mm} + 64]\nadc qword ptr [{d} + 64], {x}",
                "mov {x}, qword ptr [{mm} + 72]\nadc qword ptr [{d} + 72], {x}",
                "mov {x}, qword ptr [{mm} + 80]\nadc qword ptr [{d} + 80], {x}",
                "mov {x}, qword ptr [{mm} + 88]\nadc qword ptr [{d} + 88], {x}",
                "mov {x}, qword ptr [{mm} + 96]\nadc qword ptr [{d} + 96], {x}",
                "mov {x}, qword ptr [{mm} + 104]\nadc qword ptr [{d} + 104], {x}",
                "mov {x}, qword ptr [{mm} + 112]\nadc qword ptr [{d} + 112], {x}",
                "mov {x}, qword ptr [{mm} + 120]\nadc qword ptr [{d} + 120], {x}",
                mm = in(reg) mm.as_ptr(),
                d = in(reg) d.as_mut_ptr(),
                x = out(reg) _,
                options(nostack),
            );
        }
        d
    }
}

/// Decodes a big-endian integer of at most 128 octets (shorter inputs are left-padded).
pub(crate) fn uint_from_be(bytes: &[u8]) -> Option<U1024> {
    if bytes.len() > FP_BYTES {
        return None;
    }
    let mut buf = [0u8; FP_BYTES];
    buf[FP_BYTES - bytes.len()..].copy_from_slice(bytes);
    let x = U1024::from_be_slice(&buf);
    // The input may be a secret scalar: do not leave a copy on the stack.
    zeroize::Zeroize::zeroize(&mut buf);
    Some(x)
}

/// Encodes an integer as exactly 128 big-endian octets.
pub(crate) fn uint_to_be(x: &U1024) -> [u8; FP_BYTES] {
    let mut out = [0u8; FP_BYTES];
    for (i, w) in x.as_words().iter().rev().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Constant-time `a < b` on integers.
pub(crate) fn uint_lt(a: &U1024, b: &U1024) -> Choice {
    let (aw, bw) = (a.as_words(), b.as_words());
    // Compare from the top word down, remembering the first difference without branching.
    let mut lt = Choice::from(0);
    let mut decided = Choice::from(0);
    for i in (0..LIMBS).rev() {
        let wlt = aw[i].ct_lt(&bw[i]);
        let wne = !aw[i].ct_eq(&bw[i]);
        lt = Choice::conditional_select(&lt, &wlt, !decided & wne);
        decided |= wne;
    }
    lt
}

macro_rules! field_newtype {
    ($name:ident, $monty:ty, $modulus:expr, $mont:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Default)]
        pub struct $name($monty);

        impl $name {
            pub const ZERO: Self = Self(<$monty>::ZERO);
            pub const ONE: Self = Self(<$monty>::ONE);

            /// From an integer, reduced modulo the field's modulus.
            #[inline]
            pub fn from_uint(x: &U1024) -> Self {
                Self(<$monty>::new(x))
            }

            /// Small constants.
            pub fn from_u64(x: u64) -> Self {
                Self::from_uint(&U1024::from_u64(x))
            }

            /// The canonical integer in [0, modulus).
            #[inline]
            pub fn to_uint(&self) -> U1024 {
                self.0.retrieve()
            }

            /// Strict decoding of a canonical big-endian value (≤ 128 octets, value < modulus).
            /// Returns `None` for non-canonical input; constant-time in the value up to that
            /// single public outcome.
            pub fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
                let x = uint_from_be(bytes)?;
                // Public outcome: the encoding is refused or accepted.
                let ok: bool = crate::crypto::ct::public(uint_lt(&x, &$modulus)).into();
                if ok {
                    Some(Self::from_uint(&x))
                } else {
                    None
                }
            }

            /// Canonical 128-octet big-endian encoding.
            pub fn to_be_bytes(&self) -> [u8; FP_BYTES] {
                uint_to_be(&self.to_uint())
            }

            #[inline(always)]
            pub fn square(&self) -> Self {
                match mont::backend() {
                    mont::Backend::CryptoBigint => Self(self.0.square()),
                    be => Self::from_words(mont::mul(self.words(), self.words(), &$mont, be)),
                }
            }

            #[inline(always)]
            pub fn double(&self) -> Self {
                Self::from_words(add_mod(self.words(), self.words(), &$mont.m))
            }

            /// Constant-time inversion (safegcd); `is_some` is false for zero.
            pub fn invert(&self) -> (Self, Choice) {
                let r = self.0.invert();
                let ok = Choice::from(r.is_some().to_u8());
                (Self(r.to_inner_unchecked()), ok)
            }

            /// Variable-time inversion, for public values only.
            pub fn invert_vartime(&self) -> Option<Self> {
                self.0.invert_vartime().into_option().map(Self)
            }

            #[inline(always)]
            pub fn is_zero(&self) -> Choice {
                words_eq(self.0.as_montgomery().as_words(), &[0u64; LIMBS])
            }

            /// Raw Montgomery words, for branch-free table scans.
            #[inline(always)]
            pub(crate) fn words(&self) -> &[u64; LIMBS] {
                self.0.as_montgomery().as_words()
            }

            #[inline(always)]
            pub(crate) fn from_words(w: [u64; LIMBS]) -> Self {
                Self(<$monty>::from_montgomery(Uint::from_words(w)))
            }
        }

        impl ConstantTimeEq for $name {
            #[inline(always)]
            fn ct_eq(&self, other: &Self) -> Choice {
                words_eq(self.words(), other.words())
            }
        }

        impl ConditionallySelectable for $name {
            #[inline(always)]
            fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
                Self::from_words(select_words(a.words(), b.words(), choice))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }
        impl Eq for $name {}

        /// Values may be secret: never printed.
        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "(..)"))
            }
        }

        impl zeroize::DefaultIsZeroes for $name {}

        impl core::ops::Add for $name {
            type Output = Self;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self {
                Self::from_words(add_mod(self.words(), rhs.words(), &$mont.m))
            }
        }
        impl core::ops::Sub for $name {
            type Output = Self;
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self {
                Self::from_words(sub_mod(self.words(), rhs.words(), &$mont.m))
            }
        }
        impl core::ops::Mul for $name {
            type Output = Self;
            #[inline(always)]
            fn mul(self, rhs: Self) -> Self {
                match mont::backend() {
                    mont::Backend::CryptoBigint => Self(self.0.mul(&rhs.0)),
                    be => Self::from_words(mont::mul(self.words(), rhs.words(), &$mont, be)),
                }
            }
        }
        impl core::ops::Neg for $name {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                Self::from_words(sub_mod(&[0u64; LIMBS], self.words(), &$mont.m))
            }
        }
    };
}

field_newtype!(
    Fp,
    PMonty,
    P,
    P_MONT,
    "An element of F_p (parameter set 1), Montgomery form."
);
field_newtype!(
    Fq,
    QMonty,
    Q,
    Q_MONT,
    "An element of F_q, q the order of P (parameter set 1)."
);

impl Fp {
    /// Whether [`Fp::mul_n`] runs its products together (the IFMA backend). Callers keep their
    /// one-product-at-a-time code for the other backends, which it measured a few per cent
    /// faster there. Public: depends on the CPU only.
    #[inline(always)]
    pub(crate) fn batched() -> bool {
        cfg!(target_arch = "x86_64") && mont::backend() == mont::Backend::Ifma
    }

    /// N independent products a_k·b_k. With the IFMA backend they run in one loop, so that
    /// their dependency chains overlap; otherwise one after the other. Same values either way.
    #[inline(always)]
    pub(crate) fn mul_n<const N: usize>(a: [&Fp; N], b: [&Fp; N]) -> [Fp; N] {
        #[cfg(target_arch = "x86_64")]
        if mont::backend() == mont::Backend::Ifma {
            // SAFETY: `Ifma` is only ever selected when the CPU has AVX-512F and IFMA.
            let r = unsafe { ifma::mul_n(a.map(Fp::words), b.map(Fp::words), &P_MONT) };
            return r.map(Fp::from_words);
        }
        core::array::from_fn(|k| *a[k] * *b[k])
    }
}

impl Fq {
    /// An identifier (any length of octets) read as a big-endian integer and reduced mod q,
    /// as RFC 6508 §6.1.1 / §6.2.1 use it ("b" in [b]P). Horner's rule over 64-octet chunks:
    /// every chunk and the factor 2^512 are below q, so `from_uint` needs no extra reduction.
    pub fn from_be_bytes_reduced(bytes: &[u8]) -> Self {
        const CHUNK: usize = 64;
        let shift = Fq::from_uint(&(U1024::ONE.shl_vartime(8 * CHUNK as u32)));
        let first = bytes.len() % CHUNK;
        let mut acc = Fq::ZERO;
        let (head, rest) = bytes.split_at(first);
        if !head.is_empty() {
            acc = Fq::from_uint(&uint_from_be(head).unwrap_or(U1024::ZERO));
        }
        for chunk in rest.chunks(CHUNK) {
            let c = Fq::from_uint(&uint_from_be(chunk).unwrap_or(U1024::ZERO));
            acc = acc * shift + c;
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_and_encoding_round_trip() {
        let a = Fp::from_u64(123456789);
        let (inv, ok) = a.invert();
        assert!(bool::from(ok));
        assert_eq!(a * inv, Fp::ONE);
        assert_eq!(Fp::from_be_bytes(&a.to_be_bytes()), Some(a));
        assert!(Fp::from_be_bytes(&uint_to_be(&P)).is_none());
        assert!(!bool::from(Fp::ZERO.invert().1));
    }

    #[test]
    fn q_divides_p_plus_one_by_four() {
        // q = (p + 1) / 4 for parameter set 1: the cofactor the final exponentiation uses.
        let four_q = Q.shl_vartime(2);
        assert_eq!(four_q, P.wrapping_add(&U1024::ONE));
    }

    #[test]
    fn reduced_identifier_matches_direct_reduction() {
        let long = [0xFFu8; 300];
        let x = Fq::from_be_bytes_reduced(&long);
        // Recompute with byte-wise Horner.
        let mut acc = Fq::ZERO;
        let b256 = Fq::from_u64(256);
        for &byte in long.iter() {
            acc = acc * b256 + Fq::from_u64(u64::from(byte));
        }
        assert_eq!(x, acc);
        assert_eq!(Fq::from_be_bytes_reduced(&[1, 0]), Fq::from_u64(256));
    }

    #[test]
    fn add_sub_neg_double_match_crypto_bigint() {
        let mut vals = vec![
            Fp::ZERO,
            Fp::ONE,
            -Fp::ONE,
            Fp::from_uint(&P.wrapping_sub(&U1024::from_u64(2))),
            Fp::from_uint(&P.shr_vartime(1)),
            Fp::from_uint(&P.shr_vartime(1).wrapping_add(&U1024::ONE)),
        ];
        let mut x = Fp::from_u64(0x1234_5678_9ABC_DEF1);
        for _ in 0..40 {
            x = x * x + Fp::from_u64(7);
            vals.push(x);
        }
        for a in &vals {
            assert_eq!(-*a, Fp((a.0).neg()));
            assert_eq!(a.double(), Fp((a.0).double()));
            for b in &vals {
                assert_eq!(*a + *b, Fp((a.0).add(&b.0)));
                assert_eq!(*a - *b, Fp((a.0).sub(&b.0)));
                let m = &P_MONT.m;
                assert_eq!(
                    add_mod_portable(a.words(), b.words(), m),
                    *(*a + *b).words()
                );
                assert_eq!(
                    sub_mod_portable(a.words(), b.words(), m),
                    *(*a - *b).words()
                );
            }
        }
        let q1 = Fq::ZERO - Fq::ONE;
        assert_eq!(q1 + Fq::ONE, Fq::ZERO);
        assert_eq!((q1 + q1).to_uint(), Q.wrapping_sub(&U1024::from_u64(2)));
        assert_eq!(
            (-Fq::from_u64(5)).to_uint(),
            Q.wrapping_sub(&U1024::from_u64(5))
        );
    }

    #[test]
    fn lt_is_correct() {
        assert!(bool::from(uint_lt(&Q, &P)));
        assert!(!bool::from(uint_lt(&P, &Q)));
        assert!(!bool::from(uint_lt(&P, &P)));
    }
}
