#pragma once

// PyTorch's CPU random number generator and the draws torchvision's transforms make with it,
// reproduced without libtorch so that the core (and a preview) can sample transform parameters
// exactly as Python does: after torch.manual_seed(s) in Python and TorchGenerator(s) here, the
// same sequence of calls gives the same values (PyTorch 1.13, CPU, float32 tensors).

#include <cstdint>
#include <vector>

namespace ifs {

/// The kernel flavour PyTorch's CPU dispatch runs (ATEN_CPU_CAPABILITY, else AVX2 where the CPU has
/// AVX2 and FMA, else the portable default). It decides the rounding of uniform_() and normal_()
/// and whether torch.log / torch.exp use SLEEF or the C library.
enum class TorchCpuCapability {
    Default,
    Avx2,
};

class TorchGenerator
{
public:
    /// torch's default_rng_seed_val, the seed of a new torch.Generator(). (A new process seeds its
    /// default generator from the system's entropy, so Python needs torch.manual_seed to agree.)
    static constexpr uint64_t kDefaultSeed = 67280421310721ULL;

    explicit TorchGenerator(uint64_t seed = kDefaultSeed);

    /// torch.manual_seed(seed): also forgets any cached normal sample.
    void manualSeed(uint64_t seed);
    uint64_t initialSeed() const { return m_seed; }

    /// The generator's raw 32-bit and 64-bit draws (CPUGeneratorImpl::random / random64).
    uint32_t random();
    uint64_t random64();

    /// torch.empty(1).uniform_(from, to).item(): a float32 draw, returned widened to double as
    /// Python's float() of it.
    double uniform(double from, double to);
    /// torch.rand(1).item()
    double rand();
    /// torch.randint(low, high, size=(1,)).item(): low <= value < high.
    int64_t randint(int64_t low, int64_t high);
    /// torch.randperm(n).tolist()
    std::vector<int64_t> randperm(int64_t n);
    /// torch.multinomial(torch.tensor(weights, dtype=torch.float64), count, replacement=True)
    /// .tolist(), as torch.utils.data.WeightedRandomSampler draws (weights non-negative with a
    /// positive sum; for count 1 only a one-category distribution is reproduced).
    std::vector<int64_t> multinomialWithReplacement(const std::vector<double> &weights,
                                                    int64_t count);
    /// torch.empty(count, dtype=torch.float32).normal_(mean, std): fills out[0..count).
    void normal(float *out, int64_t count, double mean = 0.0, double std = 1.0);

    /// torch.log / torch.exp of one float32 value as PyTorch's CPU kernels compute them on this
    /// machine (detectedCpuCapability()); used by RandomResizedCrop for its ratio range.
    static float logf(float x);
    static float expf(float x);
    /// The same for a given kernel flavour: SLEEF's logf_u10 / expf_u10 for AVX2, the C library's
    /// logf / expf for the default kernels.
    static float logf(float x, TorchCpuCapability capability);
    static float expf(float x, TorchCpuCapability capability);

    /// The flavour PyTorch 1.13 picks on this machine (read once: ATEN_CPU_CAPABILITY "default" or
    /// "avx2", else AVX2 on x86 CPUs with AVX2 and FMA, else the default). The opt-in "avx512" is
    /// taken as AVX2 without having been checked; by the source, normal_() of 16 or more values
    /// differs there.
    static TorchCpuCapability detectedCpuCapability();
    /// The flavour this generator reproduces; detectedCpuCapability() unless set.
    TorchCpuCapability cpuCapability() const { return m_capability; }
    void setCpuCapability(TorchCpuCapability capability) { m_capability = capability; }

private:
    void reseed(uint64_t seed);
    void twist();
    float uniformFloat01();
    double normalDouble(double mean, double std);

    uint64_t m_seed = kDefaultSeed;
    uint32_t m_state[624] = {};
    int m_index = 624;
    // Cached second value of a Box-Muller pair, as CPUGeneratorImpl keeps one.
    bool m_hasNextFloatNormal = false;
    float m_nextFloatNormal = 0.0f;
    bool m_hasNextDoubleNormal = false;
    double m_nextDoubleNormal = 0.0;
    TorchCpuCapability m_capability = detectedCpuCapability();
};

/// Python's `random` module (CPython 3.11's Mersenne Twister), which torchvision's RandomOrder
/// and RandomChoice draw from instead of torch. Seeded as `random.seed(seed)` with an int: the
/// engine seeds it with the torch generator's seed, so Python matches after
/// `random.seed(s); torch.manual_seed(s)`.
class PythonRandom
{
public:
    explicit PythonRandom(uint64_t seed);

    /// genrand_uint32()
    uint32_t random32();
    /// random.random(): 53 bits in [0, 1).
    double random();
    /// random.getrandbits(k) for 0 < k <= 32.
    uint32_t getrandbits(int k);
    /// random._randbelow(n) for 0 < n < 2**32.
    uint32_t randbelow(uint32_t n);
    /// random.shuffle(list(range(n))).
    std::vector<int> shuffledRange(int n);
    /// The index random.choices(range(n), weights)[0] picks: uniform when weights is empty,
    /// else by cumulative weights (their count is n; the total positive and finite).
    int choiceIndex(int n, const std::vector<double> &weights);

private:
    void initGenrand(uint32_t s);
    uint32_t m_state[624] = {};
    int m_index = 625;
};

} // namespace ifs
