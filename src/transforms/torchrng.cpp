#include "transforms/torchrng.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numbers>
#include <utility>

// Every rounding below is the one PyTorch's kernels make, so the compiler must not fuse a multiply
// and an add on its own (it would on a target with FMA): the fused steps are spelled std::fma.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ifs {

namespace {

constexpr int kStateSize = 624;
constexpr int kShift = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;

// at::uniform_real_distribution<float> keeps the low 24 bits of a 32-bit draw.
constexpr uint32_t kFloatMantissaMask = (1U << 24) - 1;
constexpr float kFloatDivisor = 1.0f / float(1U << 24);
constexpr uint64_t kDoubleMantissaMask = (uint64_t(1) << 53) - 1;
constexpr double kDoubleDivisor = 1.0 / double(uint64_t(1) << 53);

float fromBits(uint32_t bits)
{
    return std::bit_cast<float>(bits);
}

uint32_t toBits(float value)
{
    return std::bit_cast<uint32_t>(value);
}

// ---- SLEEF 3.5 logf_u10 / expf_u10 (the AVX2 build, with FMA) --------------------------------
// PyTorch's Vectorized<float>::log / exp call Sleef_logf8_u10 / Sleef_expf8_u10; these are the
// same steps one lane at a time. Pairs of floats ("double-float") carry the extra precision.

struct Float2
{
    float x;
    float y;
};

Float2 dfAdd2(float x, float y)
{
    const float s = x + y;
    const float v = s - x;
    return {s, (x - (s - v)) + (y - v)};
}

Float2 dfAdd(Float2 x, Float2 y)
{
    const float s = x.x + y.x;
    return {s, (((x.x - s) + y.x) + x.y) + y.y};
}

Float2 dfAdd(Float2 x, float y)
{
    const float s = x.x + y;
    return {s, ((x.x - s) + y) + x.y};
}

Float2 dfScale(Float2 d, float s)
{
    return {d.x * s, d.y * s};
}

Float2 dfMul(Float2 x, float y)
{
    const float s = x.x * y;
    return {s, std::fma(x.y, y, std::fma(x.x, y, -s))};
}

Float2 dfDiv(Float2 n, Float2 d)
{
    const float t = 1.0f / d.x;
    const float s = n.x * t;
    const float u = std::fma(t, n.x, -s);
    const float v = std::fma(-d.y, t, std::fma(-d.x, t, 1.0f));
    return {s, std::fma(s, v, std::fma(n.y, t, u))};
}

float sleefLogf(float d)
{
    const bool tiny = d < std::numeric_limits<float>::min();
    if (tiny)
        d = d * (float(INT64_C(1) << 32) * float(INT64_C(1) << 32));
    // ilogb of d / 0.75 and the mantissa scaled by the same power: m in [0.75, 1.5).
    int e = int((toBits(d * (1.0f / 0.75f)) >> 23) & 0xff) - 0x7f;
    const float m = fromBits(toBits(d) + (uint32_t(-e) << 23));
    if (tiny)
        e -= 64;

    Float2 s = dfMul(Float2{0.69314718246459960938f, -1.904654323148236017e-09f}, float(e));
    const Float2 x = dfDiv(dfAdd2(-1.0f, m), dfAdd2(1.0f, m));
    const float x2 = x.x * x.x;
    float t = 0.3027294874e+0f;
    t = std::fma(t, x2, 0.3996108174e+0f);
    t = std::fma(t, x2, 0.6666694880e+0f);
    s = dfAdd(s, dfScale(x, 2.0f));
    s = dfAdd(s, (x2 * x.x) * t);
    float r = s.x + s.y;

    if (std::isinf(d) && d > 0)
        r = std::numeric_limits<float>::infinity();
    if (d < 0 || std::isnan(d))
        r = std::numeric_limits<float>::quiet_NaN();
    if (d == 0)
        r = -std::numeric_limits<float>::infinity();
    return r;
}

// _mm256_cvtps_epi32: round to nearest even; out of range (and NaN) gives INT32_MIN.
int32_t roundToInt32(float value)
{
    const float rounded = std::nearbyint(value);
    if (!(rounded >= -2147483648.0f && rounded < 2147483648.0f))
        return std::numeric_limits<int32_t>::min();
    return int32_t(rounded);
}

float pow2i(int32_t q)
{
    return fromBits((uint32_t(q) + 0x7f) << 23);
}

float sleefExpf(float d)
{
    const int32_t q = roundToInt32(d * 1.442695040888963407359924681001892137426645954152985934f);
    const float qf = float(q);
    float s = std::fma(qf, -0.693145751953125f, d);
    s = std::fma(qf, -1.428606765330187045e-06f, s);

    float u = 0.000198527617612853646278381f;
    u = std::fma(u, s, 0.00139304355252534151077271f);
    u = std::fma(u, s, 0.00833336077630519866943359f);
    u = std::fma(u, s, 0.0416664853692054748535156f);
    u = std::fma(u, s, 0.166666671633720397949219f);
    u = std::fma(u, s, 0.5f);
    u = 1.0f + std::fma(s * s, u, s);

    // ldexp in two halves so that neither power of two overflows.
    const int32_t half = q >> 1;
    u = (u * pow2i(half)) * pow2i(int32_t(uint32_t(q) - uint32_t(half)));

    if (d < -104.0f)
        u = 0.0f;
    if (100.0f < d)
        u = std::numeric_limits<float>::infinity();
    return u;
}

// ---- avx_mathfun.h (log256_ps, sincos256_ps) as normal_fill_16_AVX2 runs them ----------------
// The constants are double literals rounded to float, as the header's tables hold them. GCC built
// libtorch with contraction on: the fused steps below are the vfmadd/vfmsub/vfnmadd that
// libtorch_cpu.so 1.13 executes (read from its disassembly); the rest round on their own.

constexpr float kLogP[9] = {
    float(7.0376836292E-2),  float(-1.1514610310E-1), float(1.1676998740E-1),
    float(-1.2420140846E-1), float(+1.4249322787E-1), float(-1.6668057665E-1),
    float(+2.0000714765E-1), float(-2.4999993993E-1), float(+3.3333331174E-1),
};
constexpr float kLogQ1 = float(-2.12194440e-4);
constexpr float kLogQ2 = float(0.693359375);
constexpr float kSqrtHalf = float(0.707106781186547524);
constexpr float kMinusDp1 = float(-0.78515625);
constexpr float kMinusDp2 = float(-2.4187564849853515625e-4);
constexpr float kMinusDp3 = float(-3.77489497744594108e-8);
constexpr float kSinP0 = float(-1.9515295891E-4);
constexpr float kSinP1 = float(8.3321608736E-3);
constexpr float kSinP2 = float(-1.6666654611E-1);
constexpr float kCosP0 = float(2.443315711809948E-005);
constexpr float kCosP1 = float(-1.388731625493765E-003);
constexpr float kCosP2 = float(4.166664568298827E-002);
constexpr float kFourOverPi = float(1.27323954473516);

float mathfunLog(float x)
{
    const bool invalid = x <= 0.0f;
    // _mm256_max_ps(x, min_norm) returns its second operand for NaN.
    x = x > fromBits(0x00800000U) ? x : fromBits(0x00800000U);
    const int32_t exponent = int32_t(toBits(x) >> 23) - 0x7f;
    x = fromBits((toBits(x) & ~0x7f800000U) | toBits(0.5f));
    float e = float(exponent) + 1.0f;

    const bool below = x < kSqrtHalf;
    const float tmp = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + tmp;

    const float z = x * x;
    float y = kLogP[0];
    for (int k = 1; k < 9; ++k)
        y = std::fma(y, x, kLogP[k]);
    y = y * x;
    y = std::fma(y, z, e * kLogQ1);
    y = std::fma(-z, 0.5f, y);
    x = x + y;
    x = std::fma(e, kLogQ2, x);
    return invalid ? fromBits(0xffffffffU) : x;
}

void mathfunSinCos(float theta, float *sinOut, float *cosOut)
{
    uint32_t signSin = toBits(theta) & 0x80000000U;
    float x = fromBits(toBits(theta) & 0x7fffffffU);

    int32_t j = int32_t(x * kFourOverPi); // cvttps: truncation
    j = (j + 1) & ~1;
    const float y = float(j);
    const uint32_t swapSignSin = uint32_t(j & 4) << 29;
    const bool firstPolynomial = (j & 2) == 0;
    x = std::fma(y, kMinusDp1, x);
    x = std::fma(y, kMinusDp2, x);
    x = std::fma(y, kMinusDp3, x);
    const uint32_t signCos = (~uint32_t(j - 2) & 4U) << 29;
    signSin ^= swapSignSin;

    const float z = x * x;
    float yc = std::fma(std::fma(kCosP0, z, kCosP1), z, kCosP2);
    yc = yc * z;
    yc = std::fma(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;

    float ys = std::fma(std::fma(kSinP0, z, kSinP1), z, kSinP2);
    ys = ys * z;
    ys = std::fma(ys, x, x);

    // The header selects with and/andnot and adds the halves; kept so that zeros keep their sign.
    const float sinPart2 = firstPolynomial ? ys : 0.0f;
    const float sinPart1 = firstPolynomial ? 0.0f : yc;
    const float cosPart2 = ys - sinPart2;
    const float cosPart1 = yc - sinPart1;
    *sinOut = fromBits(toBits(sinPart1 + sinPart2) ^ signSin);
    *cosOut = fromBits(toBits(cosPart1 + cosPart2) ^ signCos);
}

// normal_fill_16_AVX2: Box-Muller on data[0..8) (radius) and data[8..16) (angle).
void normalFill16Avx2(float *data, float mean, float std)
{
    const float twoPi = float(2.0f * std::numbers::pi);
    for (int k = 0; k < 8; ++k) {
        const float u1 = 1.0f - data[k];
        const float u2 = data[k + 8];
        const float radius = std::sqrt(-2.0f * mathfunLog(u1));
        float sinTheta;
        float cosTheta;
        mathfunSinCos(twoPi * u2, &sinTheta, &cosTheta);
        data[k] = std::fma(radius * cosTheta, std, mean);
        data[k + 8] = std::fma(radius * sinTheta, std, mean);
    }
}

// normal_fill_16<float> of the portable build: the C library's float functions, the angle
// computed in double (2.0f * c10::pi<double> promotes).
void normalFill16Default(float *data, float mean, float std)
{
    for (int k = 0; k < 8; ++k) {
        const float u1 = 1.0f - data[k];
        const float u2 = data[k + 8];
        const float radius = std::sqrt(-2.0f * std::log(u1));
        const float theta = float(2.0 * std::numbers::pi * double(u2));
        data[k] = radius * std::cos(theta) * std + mean;
        data[k + 8] = radius * std::sin(theta) * std + mean;
    }
}

} // namespace

TorchGenerator::TorchGenerator(uint64_t seed)
{
    reseed(seed);
}

void TorchGenerator::manualSeed(uint64_t seed)
{
    reseed(seed);
}

void TorchGenerator::reseed(uint64_t seed)
{
    m_seed = seed;
    // at::mt19937 keeps the 64-bit seed but initialises from its low 32 bits.
    m_state[0] = uint32_t(seed & 0xffffffffU);
    for (int j = 1; j < kStateSize; ++j)
        m_state[j] = 1812433253U * (m_state[j - 1] ^ (m_state[j - 1] >> 30)) + uint32_t(j);
    // torch regenerates the state before its first draw.
    m_index = kStateSize;
    m_hasNextFloatNormal = false;
    m_nextFloatNormal = 0.0f;
    m_hasNextDoubleNormal = false;
    m_nextDoubleNormal = 0.0;
}

void TorchGenerator::twist()
{
    const auto mix = [](uint32_t u, uint32_t v) {
        return (((u & kUpperMask) | (v & kLowerMask)) >> 1) ^ ((v & 1U) ? kMatrixA : 0U);
    };
    int k = 0;
    for (; k < kStateSize - kShift; ++k)
        m_state[k] = m_state[k + kShift] ^ mix(m_state[k], m_state[k + 1]);
    for (; k < kStateSize - 1; ++k)
        m_state[k] = m_state[k + kShift - kStateSize] ^ mix(m_state[k], m_state[k + 1]);
    m_state[kStateSize - 1] = m_state[kShift - 1] ^ mix(m_state[kStateSize - 1], m_state[0]);
    m_index = 0;
}

uint32_t TorchGenerator::random()
{
    if (m_index >= kStateSize)
        twist();
    uint32_t y = m_state[m_index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

uint64_t TorchGenerator::random64()
{
    // The first draw is the high word (detail::make64BitsFrom32Bits).
    const uint64_t high = random();
    const uint64_t low = random();
    return (high << 32) | low;
}

float TorchGenerator::uniformFloat01()
{
    return float(random() & kFloatMantissaMask) * kFloatDivisor;
}

double TorchGenerator::uniform(double from, double to)
{
    // uniform_kernel casts the bounds to the tensor's type first.
    const float lo = float(from);
    const float hi = float(to);
    const float x = uniformFloat01();
    const float range = hi - lo;
    if (m_capability == TorchCpuCapability::Avx2)
        return double(std::fma(x, range, lo));
    return double(x * range + lo);
}

double TorchGenerator::rand()
{
    return uniform(0.0, 1.0);
}

int64_t TorchGenerator::randint(int64_t low, int64_t high)
{
    if (high <= low)
        return low; // torch raises; callers check their ranges first
    const uint64_t range = uint64_t(high) - uint64_t(low);
    // uniform_int_from_to_distribution: a 64-bit draw only where 32 bits cannot cover the range.
    const uint64_t draw = range >= (uint64_t(1) << 32) ? random64() : uint64_t(random());
    return int64_t(draw % range + uint64_t(low));
}

std::vector<int64_t> TorchGenerator::randperm(int64_t n)
{
    std::vector<int64_t> result;
    if (n <= 0)
        return result;
    result.resize(size_t(n));
    for (int64_t k = 0; k < n; ++k)
        result[size_t(k)] = k;
    // randperm_cpu: a forward Fisher-Yates with random() % (n - i).
    for (int64_t k = 0; k < n - 1; ++k) {
        const int64_t z = int64_t(random() % uint64_t(n - k));
        std::swap(result[size_t(k)], result[size_t(z + k)]);
    }
    return result;
}

std::vector<int64_t> TorchGenerator::multinomialWithReplacement(const std::vector<double> &weights,
                                                                int64_t count)
{
    std::vector<int64_t> result;
    const int64_t categories = int64_t(weights.size());
    if (count <= 0 || categories == 0)
        return result;
    result.reserve(size_t(count));
    if (count == 1) {
        // torch takes its Gumbel fast path for one sample (argmax of p / Exp(1)), which draws
        // otherwise: only the single category of a one-category distribution is reproduced.
        result.push_back(0);
        return result;
    }
    // multinomial_with_replacement_apply (double): the running sum, divided by the total.
    std::vector<double> cumulative(weights.size());
    double sum = 0.0;
    for (size_t j = 0; j < weights.size(); ++j) {
        sum += weights[j];
        cumulative[j] = sum;
    }
    if (sum > 0.0) {
        for (double &c : cumulative)
            c /= sum;
    }
    cumulative.back() = 1.0; // "make sure the last cumulative distribution bucket sums to 1"
    for (int64_t k = 0; k < count; ++k) {
        // uniform_real_distribution<double>(0, 1): 53 bits of a 64-bit draw.
        const double u = double(random64() & kDoubleMantissaMask) * kDoubleDivisor;
        // The first bucket whose cumulative probability is not below u.
        int64_t left = 0;
        int64_t right = categories;
        while (right - left > 0) {
            const int64_t mid = left + (right - left) / 2;
            if (cumulative[size_t(mid)] < u)
                left = mid + 1;
            else
                right = mid;
        }
        result.push_back(left);
    }
    return result;
}

double TorchGenerator::normalDouble(double mean, double std)
{
    // at::normal_distribution<double>: Box-Muller, keeping the sine half for the next call.
    double value;
    if (m_hasNextDoubleNormal) {
        value = m_nextDoubleNormal;
        m_hasNextDoubleNormal = false;
    } else {
        const double u1 = double(random64() & kDoubleMantissaMask) * kDoubleDivisor;
        const double u2 = double(random64() & kDoubleMantissaMask) * kDoubleDivisor;
        const double radius = std::sqrt(-2.0 * std::log(1.0 - u2));
        const double theta = 2.0 * std::numbers::pi * u1;
        m_nextDoubleNormal = radius * std::sin(theta);
        m_hasNextDoubleNormal = true;
        value = radius * std::cos(theta);
    }
    if (m_capability == TorchCpuCapability::Avx2)
        return std::fma(value, std, mean);
    return value * std + mean;
}

void TorchGenerator::normal(float *out, int64_t count, double mean, double std)
{
    if (count <= 0)
        return;
    if (count < 16) {
        // Small tensors take the serial kernel, one double sample each.
        for (int64_t k = 0; k < count; ++k)
            out[k] = float(normalDouble(mean, std));
        return;
    }

    // normal_fill: uniforms for all values first, then Box-Muller over blocks of 16; a ragged end
    // draws 16 fresh uniforms for the last 16 values and transforms them again.
    const float meanF = float(mean);
    const float stdF = float(std);
    const auto fill16
        = m_capability == TorchCpuCapability::Avx2 ? normalFill16Avx2 : normalFill16Default;
    for (int64_t k = 0; k < count; ++k)
        out[k] = uniformFloat01();
    for (int64_t k = 0; k + 16 <= count; k += 16)
        fill16(out + k, meanF, stdF);
    if (count % 16 != 0) {
        float *tail = out + count - 16;
        for (int k = 0; k < 16; ++k)
            tail[k] = uniformFloat01();
        fill16(tail, meanF, stdF);
    }
}

float TorchGenerator::logf(float x)
{
    return logf(x, detectedCpuCapability());
}

float TorchGenerator::expf(float x)
{
    return expf(x, detectedCpuCapability());
}

float TorchGenerator::logf(float x, TorchCpuCapability capability)
{
    return capability == TorchCpuCapability::Avx2 ? sleefLogf(x) : std::log(x);
}

float TorchGenerator::expf(float x, TorchCpuCapability capability)
{
    return capability == TorchCpuCapability::Avx2 ? sleefExpf(x) : std::exp(x);
}

TorchCpuCapability TorchGenerator::detectedCpuCapability()
{
    static const TorchCpuCapability capability = [] {
        // at::native::compute_cpu_capability() of 1.13: the environment variable wins; AVX-512 is
        // opt-in only.
        if (const char *forced = std::getenv("ATEN_CPU_CAPABILITY")) {
            if (std::strcmp(forced, "default") == 0)
                return TorchCpuCapability::Default;
            if (std::strcmp(forced, "avx2") == 0 || std::strcmp(forced, "avx512") == 0)
                return TorchCpuCapability::Avx2;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            return TorchCpuCapability::Avx2;
#endif
        return TorchCpuCapability::Default;
    }();
    return capability;
}

// ---- Python's random -------------------------------------------------------------------------

PythonRandom::PythonRandom(uint64_t seed)
{
    // random_seed(): init_by_array() with the absolute value's 32-bit words, least significant
    // first (at least one word).
    std::vector<uint32_t> key{uint32_t(seed)};
    if (seed >> 32)
        key.push_back(uint32_t(seed >> 32));
    initGenrand(19650218U);
    int i = 1, j = 0;
    const int keyLength = int(key.size());
    for (int k = std::max(624, keyLength); k; --k) {
        m_state[i] = (m_state[i] ^ ((m_state[i - 1] ^ (m_state[i - 1] >> 30)) * 1664525U))
            + key[size_t(j)] + uint32_t(j);
        ++i;
        ++j;
        if (i >= 624) {
            m_state[0] = m_state[623];
            i = 1;
        }
        if (j >= keyLength)
            j = 0;
    }
    for (int k = 623; k; --k) {
        m_state[i] = (m_state[i] ^ ((m_state[i - 1] ^ (m_state[i - 1] >> 30)) * 1566083941U))
            - uint32_t(i);
        ++i;
        if (i >= 624) {
            m_state[0] = m_state[623];
            i = 1;
        }
    }
    m_state[0] = 0x80000000U;
    m_index = 624;
}

void PythonRandom::initGenrand(uint32_t s)
{
    m_state[0] = s;
    for (int i = 1; i < 624; ++i)
        m_state[i] = 1812433253U * (m_state[i - 1] ^ (m_state[i - 1] >> 30)) + uint32_t(i);
    m_index = 624;
}

uint32_t PythonRandom::random32()
{
    static constexpr uint32_t kMag01[2] = {0x0U, 0x9908b0dfU};
    if (m_index >= 624) {
        int kk = 0;
        for (; kk < 624 - 397; ++kk) {
            const uint32_t y = (m_state[kk] & 0x80000000U) | (m_state[kk + 1] & 0x7fffffffU);
            m_state[kk] = m_state[kk + 397] ^ (y >> 1) ^ kMag01[y & 1U];
        }
        for (; kk < 623; ++kk) {
            const uint32_t y = (m_state[kk] & 0x80000000U) | (m_state[kk + 1] & 0x7fffffffU);
            m_state[kk] = m_state[kk + (397 - 624)] ^ (y >> 1) ^ kMag01[y & 1U];
        }
        const uint32_t y = (m_state[623] & 0x80000000U) | (m_state[0] & 0x7fffffffU);
        m_state[623] = m_state[396] ^ (y >> 1) ^ kMag01[y & 1U];
        m_index = 0;
    }
    uint32_t y = m_state[m_index++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
}

double PythonRandom::random()
{
    const uint32_t a = random32() >> 5, b = random32() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

uint32_t PythonRandom::getrandbits(int k)
{
    return random32() >> (32 - k);
}

uint32_t PythonRandom::randbelow(uint32_t n)
{
    int k = 0;
    while (k < 32 && (uint64_t(1) << k) <= n)
        ++k; // n.bit_length()
    uint32_t r = getrandbits(k);
    while (r >= n)
        r = getrandbits(k);
    return r;
}

std::vector<int> PythonRandom::shuffledRange(int n)
{
    std::vector<int> x(size_t(std::max(n, 0)));
    for (int i = 0; i < n; ++i)
        x[size_t(i)] = i;
    for (int i = n - 1; i >= 1; --i)
        std::swap(x[size_t(i)], x[randbelow(uint32_t(i) + 1)]);
    return x;
}

int PythonRandom::choiceIndex(int n, const std::vector<double> &weights)
{
    if (weights.empty())
        return int(std::floor(random() * double(n)));
    std::vector<double> cumulative;
    double sum = 0.0;
    for (const double w : weights)
        cumulative.push_back(sum += w);
    const double x = random() * cumulative.back();
    // bisect_right(cumulative, x, 0, n - 1)
    return int(std::upper_bound(cumulative.begin(), cumulative.begin() + (n - 1), x)
               - cumulative.begin());
}

} // namespace ifs
