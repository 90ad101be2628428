/*
 * wolfSSL side of the same-window ECCSI/SAKKE comparison (scripts/bench/wolfssl/run.sh).
 *
 * Built by build.sh against wolfSSL 5.9.x (the source inside the wolfssl-sys 5.3.0 crate)
 * configured with --enable-eccsi --enable-sakke --enable-intelasm --enable-sp --enable-sp-asm:
 *
 *   scripts/bench/wolfssl/build.sh && target/wolfssl/harness [N]
 *
 * Times N (argv[1], else env N, default 3000) individually timed calls of each operation with
 * clock_gettime(CLOCK_MONOTONIC) and prints the median, one line per operation:
 *
 *   median wolfssl/<op>: <us> µs
 *
 * The same way as sealkm's median benches (`ECCSI_MEDIANS=1 cargo bench --bench eccsi`,
 * `SAKKE_MEDIANS=1 cargo bench --bench sakke`), so a call preempted on a shared machine lands
 * in the tail, not in the median. The ms-scale SAKKE operations run max(N/10, 200) calls.
 *
 * Every operation is first checked to succeed (valid=1, verified=1, the derived SSV equals the
 * encapsulated one); any failing call aborts with a message.
 *
 * ECCSI: P-256, SHA-256, a 600-octet message.
 *   eccsi/issue                wc_MakeEccsiPair (KMS: SSK and PVT for an identity)
 *   eccsi/validate             wc_ValidateEccsiPair (client: SSK/PVT pair check)
 *   eccsi/sign                 wc_SignEccsiHash, HS set once (wc_HashEccsiId/wc_SetEccsiHash)
 *   eccsi/verify               wc_VerifyEccsiHash, HS of the signer set once
 *   eccsi/verify_hs_each_call  wc_DecodeEccsiPvtFromSig + wc_HashEccsiId + wc_SetEccsiHash +
 *                              wc_VerifyEccsiHash: verification of a signature from a signer
 *                              whose HS is not cached
 * SAKKE: RFC 6509 parameter set 1 (ECC_SAKKE_1), SHA-256, a 16-octet SSV.
 *   sakke/rsk_issue            wc_MakeSakkeRsk
 *   sakke/rsk_validate         wc_ValidateSakkeRsk
 *   sakke/encapsulate          wc_MakeSakkeEncapsulatedSSV, no point-I table (point I of the
 *                              identity is cached in the key after the first call)
 *   sakke/encapsulate_itable   the same with the recipient's point-I table
 *                              (wc_GenerateSakkePointITable + wc_SetSakkePointITable)
 *   sakke/decapsulate          wc_DeriveSakkeSSV, no tables (wc_SetSakkeRsk(.., NULL, 0))
 *   sakke/decapsulate_rsk_table      with the per-key RSK table (wc_GenerateSakkeRskTable +
 *                                    wc_SetSakkeRsk with the table)
 *   sakke/decapsulate_both_tables    with the RSK table and the point-I table
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/eccsi.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sakke.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if !defined(WOLFCRYPT_HAVE_ECCSI) || !defined(WOLFCRYPT_HAVE_SAKKE)
#error "wolfSSL must be configured with --enable-eccsi --enable-sakke"
#endif

static void check(int ret, const char* what)
{
    if (ret != 0) {
        fprintf(stderr, "harness: %s failed: %d\n", what, ret);
        exit(1);
    }
}

static void require(int cond, const char* what)
{
    if (!cond) {
        fprintf(stderr, "harness: %s\n", what);
        exit(1);
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void* a, const void* b)
{
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static double* samples;

static void report(const char* op, int n)
{
    qsort(samples, (size_t)n, sizeof(double), cmp_double);
    printf("median wolfssl/%s: %.2f µs\n", op, samples[n / 2]);
    fflush(stdout);
}

/* Times `n` calls of BODY (a statement that must leave `ret` 0), each one on its own;
 * SETUP runs before each call, outside the timed region. */
#define TIME_OP(op, n, SETUP, BODY)                                   \
    do {                                                              \
        for (int i_ = 0; i_ < (n); i_++) {                            \
            SETUP;                                                    \
            double t0_ = now_us();                                    \
            BODY;                                                     \
            double t1_ = now_us();                                    \
            check(ret, op);                                           \
            samples[i_] = t1_ - t0_;                                  \
        }                                                             \
        report(op, (n));                                              \
    } while (0)

static const char ID[] = "sip:alice@example.org........................................";

static void bench_eccsi(WC_RNG* rng, int n)
{
    static EccsiKey kms, client, verifier, verifier2;
    mp_int ssk;
    ecc_point* pvt = wc_ecc_new_point();
    ecc_point* pvt2 = wc_ecc_new_point();
    ecc_point* sigPvt = wc_ecc_new_point();
    byte kpak[256];
    word32 kpakSz = sizeof(kpak);
    byte hs[WC_MAX_DIGEST_SIZE], hs2[WC_MAX_DIGEST_SIZE];
    byte hsSz = 0, hs2Sz = 0;
    byte msg[600];
    byte sig[256];
    word32 sigSz = sizeof(sig);
    const byte* id = (const byte*)ID;
    word32 idSz = (word32)strlen(ID);
    int valid = 0, verified = 0, ret = 0;

    require(pvt != NULL && pvt2 != NULL && sigPvt != NULL, "wc_ecc_new_point failed");
    memset(msg, 0x42, sizeof(msg));
    check(mp_init(&ssk), "mp_init");

    /* KMS: master key (KSAK), KPAK exported for the clients. */
    check(wc_InitEccsiKey(&kms, NULL, INVALID_DEVID), "wc_InitEccsiKey(kms)");
    check(wc_MakeEccsiKey(&kms, rng), "wc_MakeEccsiKey");
    check(wc_ExportEccsiPublicKey(&kms, kpak, &kpakSz, 1), "wc_ExportEccsiPublicKey");
    check(wc_InitEccsiKey(&client, NULL, INVALID_DEVID), "wc_InitEccsiKey(client)");
    check(wc_ImportEccsiPublicKey(&client, kpak, kpakSz, 1), "wc_ImportEccsiPublicKey(client)");
    check(wc_InitEccsiKey(&verifier, NULL, INVALID_DEVID), "wc_InitEccsiKey(verifier)");
    check(wc_ImportEccsiPublicKey(&verifier, kpak, kpakSz, 1),
          "wc_ImportEccsiPublicKey(verifier)");
    check(wc_InitEccsiKey(&verifier2, NULL, INVALID_DEVID), "wc_InitEccsiKey(verifier2)");
    check(wc_ImportEccsiPublicKey(&verifier2, kpak, kpakSz, 1),
          "wc_ImportEccsiPublicKey(verifier2)");

    /* Check every operation once. */
    check(wc_MakeEccsiPair(&kms, rng, WC_HASH_TYPE_SHA256, id, idSz, &ssk, pvt),
          "wc_MakeEccsiPair");
    check(wc_ValidateEccsiPair(&client, WC_HASH_TYPE_SHA256, id, idSz, &ssk, pvt, &valid),
          "wc_ValidateEccsiPair");
    require(valid == 1, "wc_ValidateEccsiPair: pair not valid");
    check(wc_HashEccsiId(&client, WC_HASH_TYPE_SHA256, id, idSz, pvt, hs, &hsSz),
          "wc_HashEccsiId(client)");
    check(wc_SetEccsiHash(&client, hs, hsSz), "wc_SetEccsiHash(client)");
    check(wc_SetEccsiPair(&client, &ssk, pvt), "wc_SetEccsiPair");
    check(wc_SignEccsiHash(&client, rng, WC_HASH_TYPE_SHA256, msg, sizeof(msg), sig, &sigSz),
          "wc_SignEccsiHash");
    require(sigSz == 129, "wc_SignEccsiHash: signature is not 129 octets");
    check(wc_HashEccsiId(&verifier, WC_HASH_TYPE_SHA256, id, idSz, pvt, hs2, &hs2Sz),
          "wc_HashEccsiId(verifier)");
    require(hs2Sz == hsSz && memcmp(hs, hs2, hsSz) == 0, "HS differs between signer and verifier");
    check(wc_SetEccsiHash(&verifier, hs2, hs2Sz), "wc_SetEccsiHash(verifier)");
    check(wc_VerifyEccsiHash(&verifier, WC_HASH_TYPE_SHA256, msg, sizeof(msg), sig, sigSz,
                             &verified), "wc_VerifyEccsiHash");
    require(verified == 1, "wc_VerifyEccsiHash: signature not verified");
    msg[0] ^= 1;
    check(wc_VerifyEccsiHash(&verifier, WC_HASH_TYPE_SHA256, msg, sizeof(msg), sig, sigSz,
                             &verified), "wc_VerifyEccsiHash(altered)");
    require(verified == 0, "wc_VerifyEccsiHash: altered message verified");
    msg[0] ^= 1;

    /* Timed. The results of issue go to pvt2 so that the pair set in `client` stays. */
    TIME_OP("eccsi/issue", n, (void)0,
            ret = wc_MakeEccsiPair(&kms, rng, WC_HASH_TYPE_SHA256, id, idSz, &ssk, pvt2));
    /* Put back the pair checked above (issue overwrote ssk). */
    check(wc_MakeEccsiPair(&kms, rng, WC_HASH_TYPE_SHA256, id, idSz, &ssk, pvt),
          "wc_MakeEccsiPair");
    check(wc_HashEccsiId(&client, WC_HASH_TYPE_SHA256, id, idSz, pvt, hs, &hsSz),
          "wc_HashEccsiId(client)");
    check(wc_SetEccsiHash(&client, hs, hsSz), "wc_SetEccsiHash(client)");
    check(wc_SetEccsiPair(&client, &ssk, pvt), "wc_SetEccsiPair");
    check(wc_HashEccsiId(&verifier, WC_HASH_TYPE_SHA256, id, idSz, pvt, hs2, &hs2Sz),
          "wc_HashEccsiId(verifier)");
    check(wc_SetEccsiHash(&verifier, hs2, hs2Sz), "wc_SetEccsiHash(verifier)");

    TIME_OP("eccsi/validate", n, valid = 0,
            ret = wc_ValidateEccsiPair(&verifier2, WC_HASH_TYPE_SHA256, id, idSz, &ssk, pvt,
                                       &valid);
            if (ret == 0 && valid != 1) ret = -1);
    TIME_OP("eccsi/sign", n, sigSz = sizeof(sig),
            ret = wc_SignEccsiHash(&client, rng, WC_HASH_TYPE_SHA256, msg, sizeof(msg), sig,
                                   &sigSz));
    TIME_OP("eccsi/verify", n, verified = 0,
            ret = wc_VerifyEccsiHash(&verifier, WC_HASH_TYPE_SHA256, msg, sizeof(msg), sig,
                                     sigSz, &verified);
            if (ret == 0 && verified != 1) ret = -1);
    TIME_OP("eccsi/verify_hs_each_call", n, verified = 0,
            ret = wc_DecodeEccsiPvtFromSig(&verifier2, sig, sigSz, sigPvt);
            if (ret == 0) ret = wc_HashEccsiId(&verifier2, WC_HASH_TYPE_SHA256, id, idSz,
                                               sigPvt, hs2, &hs2Sz);
            if (ret == 0) ret = wc_SetEccsiHash(&verifier2, hs2, hs2Sz);
            if (ret == 0) ret = wc_VerifyEccsiHash(&verifier2, WC_HASH_TYPE_SHA256, msg,
                                                   sizeof(msg), sig, sigSz, &verified);
            if (ret == 0 && verified != 1) ret = -1);

    wc_FreeEccsiKey(&verifier2);
    wc_FreeEccsiKey(&verifier);
    wc_FreeEccsiKey(&client);
    wc_FreeEccsiKey(&kms);
    wc_ecc_del_point(sigPvt);
    wc_ecc_del_point(pvt2);
    wc_ecc_del_point(pvt);
    mp_free(&ssk);
}

static byte* make_itable(SakkeKey* key, const byte* id, word16 idSz, word32* len)
{
    byte* table;
    int ret;
    check(wc_MakeSakkePointI(key, id, idSz), "wc_MakeSakkePointI");
    *len = 0;
    ret = wc_GenerateSakkePointITable(key, NULL, len);
    require(ret == LENGTH_ONLY_E && *len > 0, "wc_GenerateSakkePointITable: no length");
    table = (byte*)malloc(*len);
    require(table != NULL, "malloc");
    check(wc_GenerateSakkePointITable(key, table, len), "wc_GenerateSakkePointITable");
    check(wc_SetSakkePointITable(key, table, *len), "wc_SetSakkePointITable");
    return table;
}

static void bench_sakke(WC_RNG* rng, int n)
{
    static SakkeKey kms, sender, sender_t, recv, recv_r, recv_rt;
    ecc_point* rsk = wc_ecc_new_point();
    ecc_point* rsk2 = wc_ecc_new_point();
    byte z[512];
    word32 zSz = sizeof(z);
    const byte* id = (const byte*)ID;
    word16 idSz = (word16)strlen(ID);
    byte ssv[16], enc[16], enc_t[16], out[16];
    byte auth[257], auth_t[257];
    word16 authSz = sizeof(auth), authSz_t = sizeof(auth_t);
    byte *itable_s, *itable_r, *rtable_r, *rtable_rt;
    word32 itable_s_len, itable_r_len, rtable_len = 0;
    int valid = 0, ret = 0;

    require(rsk != NULL && rsk2 != NULL, "wc_ecc_new_point failed");
    memset(ssv, 7, sizeof(ssv));

    /* KMS master key; the public key Z imported by senders and receivers. */
    check(wc_InitSakkeKey_ex(&kms, 128, ECC_SAKKE_1, NULL, INVALID_DEVID), "wc_InitSakkeKey_ex");
    check(wc_MakeSakkeKey(&kms, rng), "wc_MakeSakkeKey");
    check(wc_ExportSakkePublicKey(&kms, z, &zSz, 1), "wc_ExportSakkePublicKey");
    SakkeKey* keys[] = { &sender, &sender_t, &recv, &recv_r, &recv_rt };
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        check(wc_InitSakkeKey_ex(keys[k], 128, ECC_SAKKE_1, NULL, INVALID_DEVID),
              "wc_InitSakkeKey_ex");
        check(wc_ImportSakkePublicKey(keys[k], z, zSz, 1), "wc_ImportSakkePublicKey");
        check(wc_SetSakkeIdentity(keys[k], id, idSz), "wc_SetSakkeIdentity");
    }

    check(wc_MakeSakkeRsk(&kms, id, idSz, rsk), "wc_MakeSakkeRsk");
    check(wc_ValidateSakkeRsk(&recv, id, idSz, rsk, &valid), "wc_ValidateSakkeRsk");
    require(valid == 1, "wc_ValidateSakkeRsk: RSK not valid");

    /* Senders: one without tables, one with the recipient's point-I table. */
    itable_s = make_itable(&sender_t, id, idSz, &itable_s_len);
    /* Receivers: no tables; RSK table; RSK table and point-I table. */
    check(wc_SetSakkeRsk(&recv, rsk, NULL, 0), "wc_SetSakkeRsk(no table)");
    ret = wc_GenerateSakkeRskTable(&recv_r, rsk, NULL, &rtable_len);
    require(ret == LENGTH_ONLY_E && rtable_len > 0, "wc_GenerateSakkeRskTable: no length");
    rtable_r = (byte*)malloc(rtable_len);
    rtable_rt = (byte*)malloc(rtable_len);
    require(rtable_r != NULL && rtable_rt != NULL, "malloc");
    check(wc_GenerateSakkeRskTable(&recv_r, rsk, rtable_r, &rtable_len),
          "wc_GenerateSakkeRskTable");
    check(wc_SetSakkeRsk(&recv_r, rsk, rtable_r, rtable_len), "wc_SetSakkeRsk(table)");
    check(wc_GenerateSakkeRskTable(&recv_rt, rsk, rtable_rt, &rtable_len),
          "wc_GenerateSakkeRskTable");
    check(wc_SetSakkeRsk(&recv_rt, rsk, rtable_rt, rtable_len), "wc_SetSakkeRsk(table)");
    itable_r = make_itable(&recv_rt, id, idSz, &itable_r_len);

    /* Check: encapsulate with and without the table, every receiver recovers the SSV. */
    memcpy(enc, ssv, sizeof(ssv));
    check(wc_MakeSakkeEncapsulatedSSV(&sender, WC_HASH_TYPE_SHA256, enc, sizeof(enc), auth,
                                      &authSz), "wc_MakeSakkeEncapsulatedSSV");
    require(authSz == 257, "wc_MakeSakkeEncapsulatedSSV: auth is not 257 octets");
    require(memcmp(enc, ssv, sizeof(ssv)) != 0, "wc_MakeSakkeEncapsulatedSSV: SSV not masked");
    memcpy(enc_t, ssv, sizeof(ssv));
    check(wc_MakeSakkeEncapsulatedSSV(&sender_t, WC_HASH_TYPE_SHA256, enc_t, sizeof(enc_t),
                                      auth_t, &authSz_t), "wc_MakeSakkeEncapsulatedSSV(table)");
    SakkeKey* receivers[] = { &recv, &recv_r, &recv_rt };
    for (size_t k = 0; k < 3; k++) {
        memcpy(out, enc, sizeof(out));
        check(wc_DeriveSakkeSSV(receivers[k], WC_HASH_TYPE_SHA256, out, sizeof(out), auth,
                                authSz), "wc_DeriveSakkeSSV");
        require(memcmp(out, ssv, sizeof(ssv)) == 0, "wc_DeriveSakkeSSV: SSV differs");
        memcpy(out, enc_t, sizeof(out));
        check(wc_DeriveSakkeSSV(receivers[k], WC_HASH_TYPE_SHA256, out, sizeof(out), auth_t,
                                authSz_t), "wc_DeriveSakkeSSV(table-made)");
        require(memcmp(out, ssv, sizeof(ssv)) == 0, "wc_DeriveSakkeSSV: SSV differs");
    }
    out[0] = enc[0] ^ 0x80;
    memcpy(out + 1, enc + 1, sizeof(out) - 1);
    ret = wc_DeriveSakkeSSV(&recv, WC_HASH_TYPE_SHA256, out, sizeof(out), auth, authSz);
    require(ret == SAKKE_VERIFY_FAIL_E, "wc_DeriveSakkeSSV: altered SSV accepted");

    /* Timed. */
    TIME_OP("sakke/rsk_issue", n, (void)0, ret = wc_MakeSakkeRsk(&kms, id, idSz, rsk2));
    TIME_OP("sakke/rsk_validate", n, valid = 0,
            ret = wc_ValidateSakkeRsk(&recv, id, idSz, rsk, &valid);
            if (ret == 0 && valid != 1) ret = -1);
    TIME_OP("sakke/encapsulate", n, (memcpy(enc, ssv, sizeof(ssv)), authSz = sizeof(auth)),
            ret = wc_MakeSakkeEncapsulatedSSV(&sender, WC_HASH_TYPE_SHA256, enc, sizeof(enc),
                                              auth, &authSz));
    TIME_OP("sakke/encapsulate_itable", n,
            (memcpy(enc_t, ssv, sizeof(ssv)), authSz_t = sizeof(auth_t)),
            ret = wc_MakeSakkeEncapsulatedSSV(&sender_t, WC_HASH_TYPE_SHA256, enc_t,
                                              sizeof(enc_t), auth_t, &authSz_t));
    TIME_OP("sakke/decapsulate", n, memcpy(out, enc, sizeof(out)),
            ret = wc_DeriveSakkeSSV(&recv, WC_HASH_TYPE_SHA256, out, sizeof(out), auth,
                                    authSz);
            if (ret == 0 && memcmp(out, ssv, sizeof(ssv)) != 0) ret = -1);
    TIME_OP("sakke/decapsulate_rsk_table", n, memcpy(out, enc, sizeof(out)),
            ret = wc_DeriveSakkeSSV(&recv_r, WC_HASH_TYPE_SHA256, out, sizeof(out), auth,
                                    authSz);
            if (ret == 0 && memcmp(out, ssv, sizeof(ssv)) != 0) ret = -1);
    TIME_OP("sakke/decapsulate_both_tables", n, memcpy(out, enc, sizeof(out)),
            ret = wc_DeriveSakkeSSV(&recv_rt, WC_HASH_TYPE_SHA256, out, sizeof(out), auth,
                                    authSz);
            if (ret == 0 && memcmp(out, ssv, sizeof(ssv)) != 0) ret = -1);

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        wc_FreeSakkeKey(keys[k]);
    wc_FreeSakkeKey(&kms);
    free(itable_s);
    free(itable_r);
    free(rtable_r);
    free(rtable_rt);
    wc_ecc_del_point(rsk2);
    wc_ecc_del_point(rsk);
}

int main(int argc, char** argv)
{
    WC_RNG rng;
    int n = 3000, n_sakke;
    const char* arg = argc > 1 ? argv[1] : getenv("N");

    if (arg != NULL && *arg != '\0') {
        n = atoi(arg);
        require(n > 0, "usage: harness [N] (N > 0 calls per operation)");
    }
    n_sakke = n / 10 < 200 ? 200 : n / 10;
    samples = (double*)malloc(sizeof(double) * (size_t)(n > n_sakke ? n : n_sakke));
    require(samples != NULL, "malloc");
    check(wolfCrypt_Init(), "wolfCrypt_Init");
    check(wc_InitRng(&rng), "wc_InitRng");

    printf("# wolfSSL %s (wolfssl-sys 5.3.0 source): ECCSI %d calls per operation, "
           "SAKKE %d calls per operation\n", LIBWOLFSSL_VERSION_STRING, n, n_sakke);
    bench_eccsi(&rng, n);
    bench_sakke(&rng, n_sakke);

    wc_FreeRng(&rng);
    wolfCrypt_Cleanup();
    free(samples);
    return 0;
}
