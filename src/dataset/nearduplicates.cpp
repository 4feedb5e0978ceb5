// Perceptual hashes and the search for near-duplicates (see nearduplicates.h).

#include "dataset/nearduplicates.h"

#include "image/pilops.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <numeric>

namespace ifs {

namespace {

constexpr int kSide = kPerceptualHashSide;
constexpr int kBand = 8; // frequencies 1..8 in each direction

/// cos((2x + 1) u π / 2N) for u in 1..8, x in 0..31: the DCT-II's basis. The normalisation is
/// the same for every u ≥ 1, so it cannot change a comparison with the median and is left out.
const std::array<std::array<double, kSide>, kBand> &dctBasis()
{
    static const auto basis = [] {
        std::array<std::array<double, kSide>, kBand> b{};
        for (int u = 1; u <= kBand; ++u)
            for (int x = 0; x < kSide; ++x)
                b[size_t(u - 1)][size_t(x)]
                    = std::cos((2 * x + 1) * u * std::numbers::pi / (2.0 * kSide));
        return b;
    }();
    return basis;
}

constexpr int kChunks = 4; // of 16 bits: a direct table of 65,536 buckets each
constexpr size_t kChunkValues = size_t(1) << 16;

uint32_t chunk(uint64_t hash, int k)
{
    return uint32_t(hash >> (16 * k)) & 0xffffu;
}

/// The 16-bit masks with at most `radius` bits set, fewest bits first.
std::vector<uint32_t> masksUpTo(int radius)
{
    std::vector<uint32_t> masks;
    for (uint32_t m = 0; m < kChunkValues; ++m) {
        if (std::popcount(m) <= radius)
            masks.push_back(m);
    }
    std::stable_sort(masks.begin(), masks.end(),
                     [](uint32_t x, uint32_t y) { return std::popcount(x) < std::popcount(y); });
    return masks;
}

} // namespace

namespace {

/// The 32 × 32 gray image the hash and the thumbnail come from.
QImage hashInput(const QImage &image)
{
    const QImage gray = pil::toGray(image.format() == QImage::Format_Grayscale8
                                        ? image
                                        : image.convertToFormat(QImage::Format_RGB888));
    return pil::resize(gray, QSize(kSide, kSide), pil::Filter::Bilinear);
}

uint64_t hashOf(const QImage &gray)
{
    const auto &basis = dctBasis();
    // Rows first: r[y][u] = Σx p[y][x] cos(..u..), then columns: c[v][u] = Σy r[y][u] cos(..v..).
    std::array<std::array<double, kBand>, kSide> rows{};
    for (int y = 0; y < kSide; ++y) {
        const uchar *line = gray.constScanLine(y);
        for (int u = 0; u < kBand; ++u) {
            double sum = 0.0;
            for (int x = 0; x < kSide; ++x)
                sum += double(line[x]) * basis[size_t(u)][size_t(x)];
            rows[size_t(y)][size_t(u)] = sum;
        }
    }
    std::array<double, kBand * kBand> coefficients{};
    for (int v = 0; v < kBand; ++v) { // v: vertical frequency (the row of the 8 × 8 block)
        for (int u = 0; u < kBand; ++u) {
            double sum = 0.0;
            for (int y = 0; y < kSide; ++y)
                sum += rows[size_t(y)][size_t(u)] * basis[size_t(v)][size_t(y)];
            coefficients[size_t(v * kBand + u)] = sum;
        }
    }
    std::array<double, kBand *kBand> sorted = coefficients;
    std::sort(sorted.begin(), sorted.end());
    const double median = (sorted[31] + sorted[32]) / 2.0;
    uint64_t hash = 0;
    for (size_t i = 0; i < coefficients.size(); ++i) {
        if (coefficients[i] > median)
            hash |= uint64_t(1) << i;
    }
    return hash;
}

} // namespace

uint64_t perceptualHash(const QImage &image)
{
    return image.isNull() ? 0 : hashOf(hashInput(image));
}

ImageFingerprint imageFingerprint(const QImage &image)
{
    ImageFingerprint fingerprint;
    if (image.isNull())
        return fingerprint;
    const QImage gray = hashInput(image);
    fingerprint.hash = hashOf(gray);
    const QImage small
        = pil::resize(gray, QSize(kThumbnailSide, kThumbnailSide), pil::Filter::Bilinear);
    for (int y = 0; y < kThumbnailSide; ++y)
        std::copy_n(small.constScanLine(y), kThumbnailSide,
                    fingerprint.thumbnail.begin() + y * kThumbnailSide);
    return fingerprint;
}

double thumbnailDifference(const ImageFingerprint &a, const ImageFingerprint &b)
{
    int sum = 0;
    for (size_t i = 0; i < a.thumbnail.size(); ++i)
        sum += std::abs(int(a.thumbnail[i]) - int(b.thumbnail[i]));
    return double(sum) / double(a.thumbnail.size());
}

int hammingDistance(uint64_t a, uint64_t b)
{
    return std::popcount(a ^ b);
}

std::vector<NearDuplicatePair> findNearDuplicatePairs(const std::vector<uint64_t> &hashes,
                                                      int threshold, const std::vector<bool> &valid)
{
    std::vector<NearDuplicatePair> pairs;
    if (threshold < 0)
        return pairs;
    threshold = std::min(threshold, 64);
    // Two hashes within `threshold` bits are within `radius` bits on at least one of the four
    // 16-bit chunks (pigeonhole): each hash looks up the chunk values that near its own.
    const int radius = threshold / kChunks;
    const std::vector<uint32_t> masks = masksUpTo(radius);
    std::vector<size_t> order;
    for (size_t i = 0; i < hashes.size(); ++i) {
        if (valid.empty() || (i < valid.size() && valid[i]))
            order.push_back(i);
    }
    for (int k = 0; k < kChunks; ++k) {
        // Counting sort by the chunk: members[offsets[v] .. offsets[v + 1]) have chunk value v.
        std::vector<uint32_t> offsets(kChunkValues + 1, 0);
        for (size_t i : order)
            ++offsets[chunk(hashes[i], k) + 1];
        for (size_t v = 1; v < offsets.size(); ++v)
            offsets[v] += offsets[v - 1];
        std::vector<size_t> members(order.size());
        std::vector<uint32_t> fill(offsets.begin(), offsets.end() - 1);
        for (size_t i : order)
            members[fill[chunk(hashes[i], k)]++] = i;
        for (size_t i : order) {
            const uint64_t h = hashes[i];
            for (const uint32_t mask : masks) {
                const uint32_t v = chunk(h, k) ^ mask;
                // A bucket holds its members in index order: those after i only.
                const auto bucketEnd = members.begin() + offsets[v + 1];
                for (auto m = std::upper_bound(members.begin() + offsets[v], bucketEnd, i);
                     m != bucketEnd; ++m) {
                    const size_t j = *m;
                    const int distance = std::popcount(h ^ hashes[j]);
                    if (distance > threshold)
                        continue;
                    // Found once: in the first chunk where the two are within the radius.
                    bool earlier = false;
                    for (int e = 0; e < k && !earlier; ++e)
                        earlier = std::popcount(chunk(h, e) ^ chunk(hashes[j], e)) <= radius;
                    if (!earlier)
                        pairs.push_back({i, j, distance});
                }
            }
        }
    }
    std::sort(pairs.begin(), pairs.end(),
              [](const NearDuplicatePair &x, const NearDuplicatePair &y) {
                  return std::pair(x.a, x.b) < std::pair(y.a, y.b);
              });
    return pairs;
}

std::vector<NearDuplicatePair> findNearDuplicates(const std::vector<ImageFingerprint> &fingerprints,
                                                  const NearDuplicateOptions &options,
                                                  const std::vector<bool> &valid)
{
    std::vector<uint64_t> hashes(fingerprints.size());
    for (size_t i = 0; i < fingerprints.size(); ++i)
        hashes[i] = fingerprints[i].hash;
    std::vector<NearDuplicatePair> pairs;
    for (NearDuplicatePair &p : findNearDuplicatePairs(hashes, options.threshold, valid)) {
        p.difference = thumbnailDifference(fingerprints[p.a], fingerprints[p.b]);
        if (p.difference <= options.maxDifference)
            pairs.push_back(p);
    }
    return pairs;
}

std::vector<std::vector<size_t>> nearDuplicateGroups(size_t count,
                                                     const std::vector<NearDuplicatePair> &pairs)
{
    std::vector<size_t> parent(count);
    std::iota(parent.begin(), parent.end(), size_t(0));
    auto find = [&parent](size_t x) {
        while (parent[x] != x)
            x = parent[x] = parent[parent[x]];
        return x;
    };
    for (const NearDuplicatePair &p : pairs) {
        const size_t ra = find(p.a), rb = find(p.b);
        if (ra != rb)
            parent[std::max(ra, rb)] = std::min(ra, rb); // the root is the group's first item
    }
    std::vector<std::vector<size_t>> groups;
    std::vector<size_t> groupOfRoot(count, size_t(-1));
    std::vector<bool> paired(count, false);
    for (const NearDuplicatePair &p : pairs)
        paired[p.a] = paired[p.b] = true;
    for (size_t i = 0; i < count; ++i) {
        if (!paired[i])
            continue;
        const size_t root = find(i);
        if (groupOfRoot[root] == size_t(-1)) {
            groupOfRoot[root] = groups.size();
            groups.emplace_back();
        }
        groups[groupOfRoot[root]].push_back(i);
    }
    return groups;
}

} // namespace ifs
