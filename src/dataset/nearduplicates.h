#pragma once

// Near-duplicates: a perceptual DCT hash (pHash) and a 16 × 16 thumbnail of every image, and the
// pairs whose hashes are a few bits apart (found without comparing all pairs: multi-index
// hashing) and whose thumbnails agree. The health check computes the fingerprints in its
// decoding pass and reports the groups (healthcheck.h).

#include <QImage>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ifs {

/// The defaults of NearDuplicateOptions, chosen by measurement on Fashion-MNIST (README,
/// "Near-duplicates"): resized and re-encoded (JPEG quality 50-95) copies stay within both,
/// distinct images mostly beyond the second (Fashion-MNIST holds distinct pictures closer to
/// each other than a JPEG copy is to its original: no limit separates them all).
inline constexpr int kNearDuplicateThreshold = 10;
inline constexpr double kNearDuplicateMaxDifference = 4.0;

/// The side of the gray image perceptualHash() transforms, and of the thumbnail compared.
inline constexpr int kPerceptualHashSide = 32;
inline constexpr int kThumbnailSide = 16;

/// pHash of an image: gray (PIL's convert("L")), resized to 32 × 32 with PIL's BILINEAR filter
/// (antialiased when shrinking, bit for bit as Image.resize: a box filter would upscale small
/// images by repeating pixels, and copies at other sizes would hash further apart), the 2-D
/// DCT-II, its 8 × 8 lowest frequencies without the first row and column (u, v in 1..8: no DC,
/// as phash.org takes them), each coefficient compared with their median: bit (v-1)*8 + (u-1),
/// v the vertical and u the horizontal frequency, is set when the coefficient is above it. A
/// null image hashes to 0. tests/tools/nearduplicates_oracle.py computes the same with PIL.
uint64_t perceptualHash(const QImage &image);

/// What near-duplicates are found by: the hash, and the 32 × 32 gray image resized to 16 × 16
/// (PIL's BILINEAR), which tells apart the distinct pictures whose hashes happen to be close.
struct ImageFingerprint
{
    uint64_t hash = 0;
    std::array<uint8_t, kThumbnailSide * kThumbnailSide> thumbnail{};
};
ImageFingerprint imageFingerprint(const QImage &image);

/// The number of bits in which `a` and `b` differ.
int hammingDistance(uint64_t a, uint64_t b);
/// The mean absolute difference of two thumbnails, in grey levels (0..255).
double thumbnailDifference(const ImageFingerprint &a, const ImageFingerprint &b);

struct NearDuplicatePair
{
    size_t a = 0; ///< indices into the hashes, a < b
    size_t b = 0;
    int distance = 0; ///< Hamming distance of the hashes
    double difference = 0.0; ///< thumbnailDifference(), when checked
};

/// Every pair of `hashes` at most `threshold` bits apart, each once, sorted by (a, b).
/// Multi-index hashing (Norouzi et al.): the 64 bits are four 16-bit chunks, and two hashes
/// within the threshold are within threshold / 4 bits on at least one chunk (pigeonhole; for a
/// threshold up to 3 they agree exactly on one). Each hash looks up, in a table per chunk, the
/// hashes whose chunk is that near its own, and only those are compared: no comparison of all
/// pairs. Each pair is counted in the first chunk where it is that near. `valid` (when not
/// empty) marks the hashes to consider.
std::vector<NearDuplicatePair> findNearDuplicatePairs(const std::vector<uint64_t> &hashes,
                                                      int threshold,
                                                      const std::vector<bool> &valid = {});

struct NearDuplicateOptions
{
    int threshold = kNearDuplicateThreshold; ///< bits between the hashes, at most
    double maxDifference = kNearDuplicateMaxDifference; ///< thumbnailDifference(), at most
};

/// The near-duplicate pairs of `fingerprints`: hashes within the threshold (findNearDuplicatePairs)
/// whose thumbnails differ by at most maxDifference.
std::vector<NearDuplicatePair> findNearDuplicates(const std::vector<ImageFingerprint> &fingerprints,
                                                  const NearDuplicateOptions &options = {},
                                                  const std::vector<bool> &valid = {});

/// The connected groups of `pairs` over `count` items (union-find), each sorted, the groups in
/// the order of their first item; items in no pair are left out.
std::vector<std::vector<size_t>> nearDuplicateGroups(size_t count,
                                                     const std::vector<NearDuplicatePair> &pairs);

} // namespace ifs
