// TorchGenerator against the real torch 1.13 / torchvision 0.14: raw draws, uniform_, randint,
// randperm, normal_, log/exp, and every torchvision get_params re-implemented here on top of it.
#include "testutil.h"
#include "transforms/torchrng.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>

using namespace ifs;
using namespace ifs::test;
using namespace Qt::StringLiterals;

namespace {

// The oracle's spelling of each value (see torchrng_oracle.py): nothing may be lost on the way.
QString hex64(double value)
{
    return QString::asprintf("%016llx",
                             static_cast<unsigned long long>(std::bit_cast<uint64_t>(value)));
}

QString hex32(float value)
{
    return QString::asprintf("%08x", std::bit_cast<uint32_t>(value));
}

QString floatList(const std::vector<float> &values)
{
    QStringList out;
    out.reserve(qsizetype(values.size()));
    for (float v : values)
        out << hex32(v);
    return out.join(u',');
}

QString intList(const std::vector<int64_t> &values)
{
    QStringList out;
    for (int64_t v : values)
        out << QString::number(v);
    return out.join(u',');
}

// Python's round() of a float: half to even.
int64_t pyRound(double value)
{
    return int64_t(std::nearbyint(value));
}

struct Range
{
    double lo = 0.0;
    double hi = 0.0;
};

Range rangeOf(const QJsonValue &value)
{
    const QJsonArray pair = value.toArray();
    return {pair.at(0).toDouble(), pair.at(1).toDouble()};
}

// torchvision's _setup_angle: a number d means [-d, d].
Range angleRange(const QJsonValue &value)
{
    if (value.isDouble())
        return {-value.toDouble(), value.toDouble()};
    return rangeOf(value);
}

// The test's own torchvision 0.14 get_params, written against the generator only: if these agree
// with torchvision, the generator is all the production transforms need.
class Runner
{
public:
    explicit Runner(TorchGenerator &rng)
        : m_rng(rng)
    { }

    QStringList run(const QJsonObject &step)
    {
        const QString op = step.value(u"op").toString();
        if (op == u"seed") {
            const QString seed = step.value(u"seed").toString();
            if (seed == u"fresh") {
                const TorchCpuCapability capability = m_rng.cpuCapability();
                m_rng = TorchGenerator();
                m_rng.setCpuCapability(capability);
            } else {
                m_rng.manualSeed(seed.toULongLong());
            }
            return {};
        }
        if (op == u"raw32")
            return {QString::number(m_rng.random() % 0xffffffffU)};
        if (op == u"raw64")
            return {QString::number(int64_t(m_rng.random64()))};
        if (op == u"uniform")
            return {
                hex64(m_rng.uniform(step.value(u"from").toDouble(), step.value(u"to").toDouble()))};
        if (op == u"rand")
            return {hex64(m_rng.rand())};
        if (op == u"coin")
            return {coin(step.value(u"p").toDouble()) ? u"1"_s : u"0"_s};
        if (op == u"randint")
            return {QString::number(m_rng.randint(step.value(u"low").toString().toLongLong(),
                                                  step.value(u"high").toString().toLongLong()))};
        if (op == u"randperm")
            return {intList(m_rng.randperm(step.value(u"n").toInteger()))};
        if (op == u"normal") {
            std::vector<float> values(size_t(step.value(u"n").toInteger()));
            m_rng.normal(values.data(), int64_t(values.size()), step.value(u"mean").toDouble(),
                         step.value(u"std").toDouble());
            return {floatList(values)};
        }
        if (op == u"rrc")
            return resizedCrop(step);
        if (op == u"crop")
            return crop(step);
        if (op == u"jitter")
            return jitter(step);
        if (op == u"rotation")
            return {hex64(uniform(angleRange(step.value(u"degrees"))))};
        if (op == u"affine")
            return affine(step);
        if (op == u"erasing")
            return erasing(step);
        if (op == u"blur")
            return blur(step);
        if (op == u"perspective")
            return perspective(step);
        qFatal("unknown op %s", qPrintable(op));
    }

private:
    double uniform(Range r) { return m_rng.uniform(r.lo, r.hi); }

    // torch.rand(1) < p compares in float32 (p is a wrapped scalar).
    bool coin(double p) { return float(m_rng.rand()) < float(p); }

    double expOf(double x) const
    {
        return double(TorchGenerator::expf(float(x), m_rng.cpuCapability()));
    }

    static QStringList ints(std::initializer_list<int64_t> values)
    {
        QStringList out;
        for (int64_t v : values)
            out << QString::number(v);
        return out;
    }

    QStringList resizedCrop(const QJsonObject &step)
    {
        const int64_t height = step.value(u"h").toInteger();
        const int64_t width = step.value(u"w").toInteger();
        const Range scale = rangeOf(step.value(u"scale"));
        const Range ratio = rangeOf(step.value(u"ratio"));
        const double area = double(height * width);
        const Range logs = logRatioFor(ratio);
        for (int attempt = 0; attempt < 10; ++attempt) {
            const double targetArea = area * uniform(scale);
            const double aspect = expOf(uniform(logs));
            const int64_t w = pyRound(std::sqrt(targetArea * aspect));
            const int64_t h = pyRound(std::sqrt(targetArea / aspect));
            if (0 < w && w <= width && 0 < h && h <= height) {
                const int64_t i = m_rng.randint(0, height - h + 1);
                const int64_t j = m_rng.randint(0, width - w + 1);
                return ints({i, j, h, w});
            }
        }
        const double inRatio = double(width) / double(height);
        const double minRatio = std::min(ratio.lo, ratio.hi);
        const double maxRatio = std::max(ratio.lo, ratio.hi);
        int64_t w = width;
        int64_t h = height;
        if (inRatio < minRatio) {
            h = pyRound(double(w) / minRatio);
        } else if (inRatio > maxRatio) {
            w = pyRound(double(h) * maxRatio);
        }
        return ints({(height - h) / 2, (width - w) / 2, h, w});
    }

    // torch.log(torch.tensor(ratio)): float32 logs, widened when uniform_ takes them.
    Range logRatioFor(Range ratio) const
    {
        return {double(TorchGenerator::logf(float(ratio.lo), m_rng.cpuCapability())),
                double(TorchGenerator::logf(float(ratio.hi), m_rng.cpuCapability()))};
    }

    QStringList crop(const QJsonObject &step)
    {
        const int64_t h = step.value(u"h").toInteger();
        const int64_t w = step.value(u"w").toInteger();
        const QJsonArray size = step.value(u"size").toArray();
        const int64_t th = size.at(0).toInteger();
        const int64_t tw = size.at(1).toInteger();
        if (w == tw && h == th)
            return ints({0, 0, h, w});
        const int64_t i = m_rng.randint(0, h - th + 1);
        const int64_t j = m_rng.randint(0, w - tw + 1);
        return ints({i, j, th, tw});
    }

    QStringList jitter(const QJsonObject &step)
    {
        QStringList out{intList(m_rng.randperm(4))};
        // ColorJitter._check_input: [max(0, 1 - v), 1 + v] around 1, [-v, v] for hue; a range
        // that is only the centre is None and draws nothing.
        for (const char16_t *key : {u"brightness", u"contrast", u"saturation"}) {
            const double v = step.value(key).toDouble();
            if (v == 0.0)
                out << u"None"_s;
            else
                out << hex64(uniform({std::max(0.0, 1.0 - v), 1.0 + v}));
        }
        const double hue = step.value(u"hue").toDouble();
        out << (hue == 0.0 ? u"None"_s : hex64(uniform({-hue, hue})));
        return out;
    }

    QStringList affine(const QJsonObject &step)
    {
        const double angle = uniform(angleRange(step.value(u"degrees")));
        int64_t tx = 0;
        int64_t ty = 0;
        if (step.value(u"translate").isArray()) {
            const Range t = rangeOf(step.value(u"translate"));
            const double maxDx = t.lo * double(step.value(u"w").toInteger());
            const double maxDy = t.hi * double(step.value(u"h").toInteger());
            tx = pyRound(uniform({-maxDx, maxDx}));
            ty = pyRound(uniform({-maxDy, maxDy}));
        }
        const double scale
            = step.value(u"scale").isArray() ? uniform(rangeOf(step.value(u"scale"))) : 1.0;
        double shearX = 0.0;
        double shearY = 0.0;
        const QJsonValue shear = step.value(u"shear");
        if (shear.isDouble()) {
            shearX = uniform(angleRange(shear));
        } else if (shear.isArray()) {
            const QJsonArray s = shear.toArray();
            shearX = uniform({s.at(0).toDouble(), s.at(1).toDouble()});
            if (s.size() == 4)
                shearY = uniform({s.at(2).toDouble(), s.at(3).toDouble()});
        }
        return {hex64(angle), QString::number(tx), QString::number(ty),
                hex64(scale), hex64(shearX),       hex64(shearY)};
    }

    QStringList erasing(const QJsonObject &step)
    {
        const int64_t c = step.value(u"c").toInteger();
        const int64_t imgH = step.value(u"h").toInteger();
        const int64_t imgW = step.value(u"w").toInteger();
        const Range scale = rangeOf(step.value(u"scale"));
        const Range logs = logRatioFor(rangeOf(step.value(u"ratio")));
        const double area = double(imgH * imgW);
        for (int attempt = 0; attempt < 10; ++attempt) {
            const double eraseArea = area * uniform(scale);
            const double aspect = expOf(uniform(logs));
            const int64_t h = pyRound(std::sqrt(eraseArea * aspect));
            const int64_t w = pyRound(std::sqrt(eraseArea / aspect));
            if (!(h < imgH && w < imgW))
                continue;
            QString values;
            if (step.value(u"value").isArray()) {
                std::vector<float> v;
                for (const QJsonValue &x : step.value(u"value").toArray())
                    v.push_back(float(x.toDouble()));
                values = floatList(v);
            } else {
                std::vector<float> v(size_t(c * h * w));
                m_rng.normal(v.data(), int64_t(v.size()));
                values = floatList(v);
            }
            const int64_t i = m_rng.randint(0, imgH - h + 1);
            const int64_t j = m_rng.randint(0, imgW - w + 1);
            return ints({i, j, h, w}) << values;
        }
        return ints({0, 0, imgH, imgW}) << u"image"_s;
    }

    QStringList blur(const QJsonObject &step)
    {
        const QJsonValue sigma = step.value(u"sigma");
        const Range r
            = sigma.isDouble() ? Range{sigma.toDouble(), sigma.toDouble()} : rangeOf(sigma);
        return {hex64(uniform(r))};
    }

    QStringList perspective(const QJsonObject &step)
    {
        const int64_t width = step.value(u"w").toInteger();
        const int64_t height = step.value(u"h").toInteger();
        const double distortion = step.value(u"distortion").toDouble();
        const int64_t dx = int64_t(distortion * double(width / 2));
        const int64_t dy = int64_t(distortion * double(height / 2));
        const auto draw = [this](int64_t low, int64_t high) {
            return m_rng.randint(low, high);
        };
        QStringList points;
        const auto point = [&points](int64_t x, int64_t y) {
            points << QString::number(x) + u',' + QString::number(y);
        };
        // Each point's x then y, in torchvision's order: top-left, top-right, bottom-right,
        // bottom-left.
        int64_t x = draw(0, dx + 1);
        point(x, draw(0, dy + 1));
        x = draw(width - dx - 1, width);
        point(x, draw(0, dy + 1));
        x = draw(width - dx - 1, width);
        point(x, draw(height - dy - 1, height));
        x = draw(0, dx + 1);
        point(x, draw(height - dy - 1, height));
        return {points.join(u';')};
    }

    TorchGenerator &m_rng;
};

QJsonObject seedStep(uint64_t seed)
{
    return {{u"op"_s, u"seed"_s}, {u"seed"_s, QString::number(seed)}};
}

QJsonObject op(const QString &name, std::initializer_list<QPair<QString, QJsonValue>> args = {})
{
    QJsonObject step{{u"op"_s, name}};
    for (const auto &[key, value] : args)
        step.insert(key, value);
    return step;
}

QJsonArray pair(double a, double b)
{
    return QJsonArray{a, b};
}

QString int64String(int64_t value)
{
    return QString::number(value);
}

const uint64_t kSeeds[] = {0,
                           1,
                           42,
                           (uint64_t(1) << 32) + 5,
                           TorchGenerator::kDefaultSeed,
                           123456789,
                           uint64_t(1) << 63,
                           ~uint64_t(0)};

// A program of primitive draws chosen by a fixed pseudo-random sequence, mixing every kind of call
// (so each one starts from a state the others left, the Box-Muller cache included).
QJsonArray mixedSteps(uint64_t seed, int count, uint64_t choice)
{
    std::mt19937_64 pick(choice);
    const auto any = [&pick](auto &list) {
        return list[pick() % std::size(list)];
    };
    static const double kRanges[][2] = {
        {0.08, 1.0},
        {-30.0, 30.0},
        {0.6, 1.4},
        {-0.1, 0.1},
        {-0.2876820724517809, 0.2876820724517809},
        {0.0, 0.0},
        {1e-3, 1e3},
        {-1e6, 1e6},
        {0.1, 2.0},
        {0.02, 0.33},
        {-1.2039728043259361, 1.1939224684724346},
        {0.5, 0.5000001},
        {3.0, 7.0},
    };
    static const double kCoins[] = {0.5, 0.1, 0.9, 0.25, 0.75, 0.0, 1.0};
    static const int64_t kIntRanges[][2] = {
        {0, 1},
        {0, 2},
        {0, 10},
        {5, 6},
        {-7, 3},
        {0, 225},
        {0, 4000},
        {0, 0xffffffffLL},
        {0, 0x100000000LL},
        {0, 0x100000001LL},
        {-(1LL << 40), 1LL << 40},
        {-(1LL << 62), 1LL << 62},
        {-1000000007, 1000000007},
        {INT64_MIN, INT64_MAX},
    };
    static const int kPerms[] = {0, 1, 2, 3, 4, 4, 4, 5, 10, 100};
    static const int kNormalCounts[] = {1, 1, 2, 3, 15, 16, 17, 31, 32, 33, 47, 48, 100, 300};
    static const double kNormalParams[][2] = {{0.0, 1.0}, {0.0, 1.0}, {0.5, 0.25}, {-3.0, 2.5}};

    QJsonArray steps{seedStep(seed)};
    for (int k = 0; k < count; ++k) {
        switch (pick() % 9) {
        case 0:
            steps << op(u"raw32"_s);
            break;
        case 1:
            steps << op(u"raw64"_s);
            break;
        case 2:
        case 3: {
            const auto *r = any(kRanges);
            steps << op(u"uniform"_s, {{u"from"_s, r[0]}, {u"to"_s, r[1]}});
            break;
        }
        case 4:
            steps << (pick() % 2 ? op(u"rand"_s) : op(u"coin"_s, {{u"p"_s, any(kCoins)}}));
            break;
        case 5: {
            const auto *r = any(kIntRanges);
            steps << op(u"randint"_s,
                        {{u"low"_s, int64String(r[0])}, {u"high"_s, int64String(r[1])}});
            break;
        }
        case 6:
            steps << op(u"randperm"_s, {{u"n"_s, any(kPerms)}});
            break;
        default: {
            const auto *p = any(kNormalParams);
            steps << op(u"normal"_s,
                        {{u"n"_s, any(kNormalCounts)}, {u"mean"_s, p[0]}, {u"std"_s, p[1]}});
            break;
        }
        }
    }
    return steps;
}

// torchvision's get_params for a range of arguments, including ones that exhaust the ten tries.
QJsonArray transformSteps(uint64_t seed)
{
    QJsonArray steps{seedStep(seed)};
    const QJsonArray defaultScale = pair(0.08, 1.0);
    const QJsonArray defaultRatio = pair(3.0 / 4.0, 4.0 / 3.0);
    const int sizes[][2]
        = {{224, 224}, {375, 500}, {500, 333}, {32, 32}, {1, 1}, {2, 640}, {4000, 3000}, {17, 9}};
    for (const auto &s : sizes) {
        for (int k = 0; k < 6; ++k) {
            steps << op(u"rrc"_s,
                        {{u"h"_s, s[0]},
                         {u"w"_s, s[1]},
                         {u"scale"_s, defaultScale},
                         {u"ratio"_s, defaultRatio}});
        }
        // Ratios no crop of the image can meet: the fallback, on both sides.
        steps << op(u"rrc"_s,
                    {{u"h"_s, s[0]},
                     {u"w"_s, s[1]},
                     {u"scale"_s, pair(0.9, 1.0)},
                     {u"ratio"_s, pair(5.0, 10.0)}});
        steps << op(u"rrc"_s,
                    {{u"h"_s, s[0]},
                     {u"w"_s, s[1]},
                     {u"scale"_s, pair(0.95, 1.0)},
                     {u"ratio"_s, pair(0.1, 0.2)}});
        steps << op(u"rrc"_s,
                    {{u"h"_s, s[0]},
                     {u"w"_s, s[1]},
                     {u"scale"_s, pair(0.5, 1.0)},
                     {u"ratio"_s, pair(0.5, 2.0)}});
        steps << op(u"crop"_s,
                    {{u"h"_s, s[0]},
                     {u"w"_s, s[1]},
                     {u"size"_s, QJsonArray{(s[0] + 1) / 2, (s[1] + 2) / 3}}});
        steps << op(u"crop"_s,
                    {{u"h"_s, s[0]}, {u"w"_s, s[1]}, {u"size"_s, QJsonArray{s[0], s[1]}}});
        steps << op(u"crop"_s, {{u"h"_s, s[0]}, {u"w"_s, s[1]}, {u"size"_s, QJsonArray{1, s[1]}}});
        steps << op(u"coin"_s, {{u"p"_s, 0.5}});
        steps << op(u"erasing"_s,
                    {{u"c"_s, 3},
                     {u"h"_s, std::min(s[0], 64)},
                     {u"w"_s, std::min(s[1], 48)},
                     {u"scale"_s, pair(0.02, 0.33)},
                     {u"ratio"_s, pair(0.3, 3.3)}});
        steps << op(u"erasing"_s,
                    {{u"c"_s, 1},
                     {u"h"_s, s[0]},
                     {u"w"_s, s[1]},
                     {u"scale"_s, pair(0.02, 0.33)},
                     {u"ratio"_s, pair(0.3, 3.3)},
                     {u"value"_s, QJsonArray{0.5}}});
        steps << op(u"perspective"_s, {{u"w"_s, s[1]}, {u"h"_s, s[0]}, {u"distortion"_s, 0.5}});
    }
    // Erasing that can never fit (scale 1): ten tries, then the image.
    steps << op(u"erasing"_s,
                {{u"c"_s, 3},
                 {u"h"_s, 10},
                 {u"w"_s, 10},
                 {u"scale"_s, pair(1.0, 1.0)},
                 {u"ratio"_s, pair(1.0, 1.0)}});
    // Erasing patches of 16 or more values (the vectorised normal_) and of fewer.
    for (int k = 0; k < 10; ++k) {
        steps << op(u"erasing"_s,
                    {{u"c"_s, 3},
                     {u"h"_s, 224},
                     {u"w"_s, 224},
                     {u"scale"_s, pair(0.02, 0.33)},
                     {u"ratio"_s, pair(0.3, 3.3)}});
        steps << op(u"erasing"_s,
                    {{u"c"_s, 1},
                     {u"h"_s, 6},
                     {u"w"_s, 6},
                     {u"scale"_s, pair(0.02, 0.2)},
                     {u"ratio"_s, pair(0.3, 3.3)}});
    }
    const double jitters[][4] = {{0.4, 0.4, 0.4, 0.1},
                                 {0.0, 0.0, 0.0, 0.0},
                                 {0.2, 0.0, 0.0, 0.5},
                                 {1.5, 0.3, 0.0, 0.0},
                                 {0.0, 0.0, 0.7, 0.05}};
    for (const auto &j : jitters) {
        steps << op(u"jitter"_s,
                    {{u"brightness"_s, j[0]},
                     {u"contrast"_s, j[1]},
                     {u"saturation"_s, j[2]},
                     {u"hue"_s, j[3]}});
    }
    steps << op(u"rotation"_s, {{u"degrees"_s, 30}});
    steps << op(u"rotation"_s, {{u"degrees"_s, 15.5}});
    steps << op(u"rotation"_s, {{u"degrees"_s, pair(-5, 175)}});
    steps << op(u"affine"_s, {{u"degrees"_s, 10}, {u"w"_s, 64}, {u"h"_s, 48}});
    steps << op(u"affine"_s,
                {{u"degrees"_s, pair(-45, 10)},
                 {u"translate"_s, pair(0.1, 0.2)},
                 {u"scale"_s, pair(0.9, 1.1)},
                 {u"shear"_s, 5},
                 {u"w"_s, 224},
                 {u"h"_s, 160}});
    steps << op(u"affine"_s,
                {{u"degrees"_s, 0},
                 {u"translate"_s, pair(0.3, 0.05)},
                 {u"shear"_s, QJsonArray{-3, 4, 1, 2}},
                 {u"w"_s, 333},
                 {u"h"_s, 500}});
    steps << op(u"affine"_s,
                {{u"degrees"_s, 180}, {u"shear"_s, pair(-10, 10)}, {u"w"_s, 7}, {u"h"_s, 5}});
    steps << op(u"blur"_s, {{u"kernel"_s, 5}, {u"sigma"_s, pair(0.1, 2.0)}});
    steps << op(u"blur"_s, {{u"kernel"_s, 3}, {u"sigma"_s, 1.5}});
    return steps;
}

// A typical training pipeline, image after image: RandomResizedCrop, flip, ColorJitter, erasing.
QJsonArray pipelineSteps(uint64_t seed, int images)
{
    QJsonArray steps{seedStep(seed)};
    std::mt19937 sizes{uint32_t(seed)};
    for (int k = 0; k < images; ++k) {
        const int h = 50 + int(sizes() % 600);
        const int w = 50 + int(sizes() % 600);
        steps << op(u"rrc"_s,
                    {{u"h"_s, h},
                     {u"w"_s, w},
                     {u"scale"_s, pair(0.08, 1.0)},
                     {u"ratio"_s, pair(3.0 / 4.0, 4.0 / 3.0)}});
        steps << op(u"coin"_s, {{u"p"_s, 0.5}});
        steps << op(u"jitter"_s,
                    {{u"brightness"_s, 0.4},
                     {u"contrast"_s, 0.4},
                     {u"saturation"_s, 0.4},
                     {u"hue"_s, 0.1}});
        steps << op(u"coin"_s, {{u"p"_s, 0.25}});
        steps << op(u"erasing"_s,
                    {{u"c"_s, 3},
                     {u"h"_s, 32},
                     {u"w"_s, 32},
                     {u"scale"_s, pair(0.02, 0.33)},
                     {u"ratio"_s, pair(0.3, 3.3)}});
    }
    return steps;
}

struct Program
{
    QString name;
    QJsonArray steps;
};

QList<Program> programs()
{
    QList<Program> out;
    for (uint64_t seed : kSeeds) {
        const QString s = QString::number(seed);
        QJsonArray raw{seedStep(seed)};
        // 700 draws cross the first regeneration of the state (624 words).
        for (int k = 0; k < 700; ++k)
            raw << op(u"raw32"_s);
        for (int k = 0; k < 100; ++k)
            raw << op(u"raw64"_s);
        out.append({u"raw "_s + s, raw});
        out.append({u"mixed "_s + s, mixedSteps(seed, 400, seed ^ 0x5eed)});
        out.append({u"torchvision "_s + s, transformSteps(seed)});
    }
    // A new generator, never seeded: torch.Generator() starts from default_rng_seed_val.
    QJsonArray fresh = mixedSteps(0, 50, 7);
    fresh.replace(0, QJsonObject{{u"op"_s, u"seed"_s}, {u"seed"_s, u"fresh"_s}});
    out.append({u"new generator"_s, fresh});
    out.append({u"long mixed"_s, mixedSteps(2024, 20000, 99)});
    out.append({u"pipeline 42"_s, pipelineSteps(42, 300)});
    out.append({u"pipeline 7"_s, pipelineSteps(7, 100)});
    // Reseeding mid-way forgets the cached normal sample.
    QJsonArray reseed{
        seedStep(3), op(u"normal"_s, {{u"n"_s, 1}, {u"mean"_s, 0.0}, {u"std"_s, 1.0}}), seedStep(3),
        op(u"normal"_s, {{u"n"_s, 1}, {u"mean"_s, 0.0}, {u"std"_s, 1.0}}),
        op(u"normal"_s, {{u"n"_s, 1}, {u"mean"_s, 0.0}, {u"std"_s, 1.0}})};
    out.append({u"reseed clears cache"_s, reseed});
    // One large normal_, as RandomErasing on a 224x224 RGB image: full blocks and the ragged end.
    out.append(
        {u"big normal"_s,
         QJsonArray{
             seedStep(11),
             op(u"normal"_s, {{u"n"_s, 3 * 224 * 224}, {u"mean"_s, 0.0}, {u"std"_s, 1.0}}),
             op(u"normal"_s, {{u"n"_s, 3 * 223 * 221}, {u"mean"_s, 0.5}, {u"std"_s, 2.0}})}});
    return out;
}

// Inputs for log and exp: the ratios people write, their logs, and wide random samples.
std::vector<float> logInputs()
{
    std::vector<float> xs{0.75f,
                          float(4.0 / 3.0),
                          0.5f,
                          2.0f,
                          1.0f,
                          float(1.0 / 3.0),
                          3.0f,
                          0.3f,
                          3.3f,
                          0.1f,
                          10.0f,
                          0.25f,
                          4.0f,
                          0.2f,
                          5.0f,
                          float(16.0 / 9.0),
                          float(9.0 / 16.0),
                          1.5f,
                          float(2.0 / 3.0),
                          0.08f,
                          1e-30f,
                          1e-40f,
                          std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::denorm_min(),
                          0.0f,
                          std::numeric_limits<float>::infinity()};
    std::mt19937 gen(5);
    std::uniform_real_distribution<float> exponent(-4.6f, 4.6f); // 0.01 .. 100
    for (int k = 0; k < 100000; ++k)
        xs.push_back(std::exp(exponent(gen)));
    std::uniform_int_distribution<uint32_t> bits(0x00000001U, 0x7f7fffffU);
    for (int k = 0; k < 20000; ++k)
        xs.push_back(std::bit_cast<float>(bits(gen)));
    return xs;
}

std::vector<float> expInputs()
{
    std::vector<float> xs;
    for (float r : {0.75f, float(4.0 / 3.0), 0.5f, 2.0f, 1.0f, 0.3f, 3.3f, 0.1f, 10.0f})
        xs.push_back(TorchGenerator::logf(r));
    for (float x :
         {0.0f, -0.0f, 1.0f, -1.0f, 88.0f, 88.7f, 89.0f, -87.0f, -100.0f, -103.9f, -104.5f, 100.5f,
          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
        xs.push_back(x);
    std::mt19937 gen(6);
    std::uniform_real_distribution<float> narrow(-3.0f, 3.0f); // log ratios
    for (int k = 0; k < 100000; ++k)
        xs.push_back(narrow(gen));
    std::uniform_real_distribution<float> wide(-110.0f, 110.0f);
    for (int k = 0; k < 20000; ++k)
        xs.push_back(wide(gen));
    return xs;
}

QJsonArray bitsArray(const std::vector<float> &xs)
{
    QJsonArray out;
    for (float x : xs)
        out.append(qint64(std::bit_cast<uint32_t>(x)));
    return out;
}

struct Oracle
{
    QString capability;
    QJsonObject programs;
    QJsonArray log;
    QJsonArray exp;
};

} // namespace

class TestTorchRng : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void standardMersenneTwister_data();
    void standardMersenneTwister();
    void seedState();
    void capabilityMatchesTorch();
    void programs_data();
    void programs();
    void programsDefaultKernels_data();
    void programsDefaultKernels();
    void logExp();
    void logExpDefaultKernels();
    void benchmarkRandom();

private:
    void runOracle(const QString &capability, Oracle *oracle);
    void comparePrograms(const Oracle &oracle, TorchCpuCapability capability);
    void compareLogExp(const Oracle &oracle, TorchCpuCapability capability);

    QTemporaryDir m_dir;
    QList<Program> m_programs;
    std::vector<float> m_logInputs;
    std::vector<float> m_expInputs;
    Oracle m_native;
    Oracle m_default;
};

void TestTorchRng::runOracle(const QString &capability, Oracle *oracle)
{
    QJsonArray list;
    for (const Program &p : std::as_const(m_programs))
        list.append(QJsonObject{{u"name"_s, p.name}, {u"steps"_s, p.steps}});
    const QJsonObject request{{u"programs"_s, list},
                              {u"log"_s, bitsArray(m_logInputs)},
                              {u"exp"_s, bitsArray(m_expInputs)}};
    const QString path = m_dir.filePath(u"request.json"_s);
    QVERIFY(writeFile(path, QJsonDocument(request).toJson(QJsonDocument::Compact)));
    QStringList args{path};
    if (!capability.isEmpty())
        args << u"--capability"_s << capability;
    const ProcessResult r = ifs::test::runOracle(u"torchrng_oracle.py"_s, args, 600000);
    QVERIFY2(r.exitCode == 0 && !r.crashed, r.err.constData());
    QJsonParseError error;
    const QJsonObject reply = QJsonDocument::fromJson(r.out, &error).object();
    QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString()));
    oracle->capability = reply.value(u"capability").toString();
    oracle->programs = reply.value(u"programs").toObject();
    oracle->log = reply.value(u"log").toArray();
    oracle->exp = reply.value(u"exp").toArray();
}

void TestTorchRng::initTestCase()
{
    QVERIFY(m_dir.isValid());
    m_programs = ::programs();
    m_logInputs = logInputs();
    m_expInputs = expInputs();
    runOracle(QString(), &m_native);
    QVERIFY(!QTest::currentTestFailed());
    runOracle(u"default"_s, &m_default);
}

void TestTorchRng::standardMersenneTwister_data()
{
    QTest::addColumn<quint64>("seed");
    for (uint64_t seed : kSeeds)
        QTest::newRow(qPrintable(QString::number(seed))) << quint64(seed);
}

void TestTorchRng::standardMersenneTwister()
{
    // torch's engine is the reference mt19937 seeded with the low 32 bits; random64 takes the
    // first draw as its high word.
    QFETCH(quint64, seed);
    TorchGenerator g(seed);
    std::mt19937 reference{uint32_t(seed)};
    for (int k = 0; k < 5000; ++k)
        QCOMPARE(g.random(), uint32_t(reference()));
    for (int k = 0; k < 1000; ++k) {
        const uint64_t high = reference();
        QCOMPARE(g.random64(), (high << 32) | uint64_t(reference()));
    }
}

void TestTorchRng::seedState()
{
    TorchGenerator fresh;
    QCOMPARE(fresh.initialSeed(), TorchGenerator::kDefaultSeed);
    TorchGenerator g(5);
    const uint32_t first = g.random();
    float a[1];
    g.normal(a, 1); // leaves the sine half cached
    g.manualSeed((uint64_t(1) << 32) + 5);
    QCOMPARE(g.initialSeed(), (uint64_t(1) << 32) + 5);
    QCOMPARE(g.random(), first); // only the low 32 bits seed the state
    g.manualSeed(5);
    g.random();
    float b[1];
    g.normal(b, 1);
    QCOMPARE(std::bit_cast<uint32_t>(b[0]), std::bit_cast<uint32_t>(a[0]));
}

void TestTorchRng::capabilityMatchesTorch()
{
    // What torch reports it runs here must be what the generator reproduces by default.
    const TorchCpuCapability detected = TorchGenerator::detectedCpuCapability();
    if (m_native.capability == u"AVX2")
        QCOMPARE(detected, TorchCpuCapability::Avx2);
    else if (m_native.capability == u"NO AVX" || m_native.capability == u"DEFAULT")
        QCOMPARE(detected, TorchCpuCapability::Default);
    else
        QSKIP(qPrintable(u"torch runs the %1 kernels here"_s.arg(m_native.capability)));
    QCOMPARE(m_default.capability, u"NO AVX"_s);
    QCOMPARE(TorchGenerator().cpuCapability(), detected);
}

void TestTorchRng::programs_data()
{
    QTest::addColumn<int>("index");
    for (qsizetype k = 0; k < m_programs.size(); ++k)
        QTest::newRow(qPrintable(m_programs.at(k).name)) << int(k);
}

void TestTorchRng::programs()
{
    comparePrograms(m_native, TorchGenerator::detectedCpuCapability());
}

void TestTorchRng::programsDefaultKernels_data()
{
    programs_data();
}

void TestTorchRng::programsDefaultKernels()
{
    comparePrograms(m_default, TorchCpuCapability::Default);
}

void TestTorchRng::comparePrograms(const Oracle &oracle, TorchCpuCapability capability)
{
    QFETCH(int, index);
    const Program &program = m_programs.at(index);
    const QJsonArray expected = oracle.programs.value(program.name).toArray();
    QVERIFY(!expected.isEmpty());

    TorchGenerator g;
    g.setCpuCapability(capability);
    Runner runner(g);
    qsizetype at = 0;
    for (qsizetype s = 0; s < program.steps.size(); ++s) {
        const QJsonObject step = program.steps.at(s).toObject();
        const QStringList got = runner.run(step);
        for (const QString &value : got) {
            QVERIFY2(at < expected.size(), "the oracle returned fewer values");
            const QString want = expected.at(at++).toString();
            if (value != want) {
                QFAIL(qPrintable(u"step %1 %2: got %3, torch gave %4"_s.arg(s).arg(
                    QString::fromUtf8(QJsonDocument(step).toJson(QJsonDocument::Compact)),
                    value.left(200), want.left(200))));
            }
        }
    }
    QCOMPARE(at, expected.size());
}

void TestTorchRng::compareLogExp(const Oracle &oracle, TorchCpuCapability capability)
{
    QCOMPARE(size_t(oracle.log.size()), m_logInputs.size());
    QCOMPARE(size_t(oracle.exp.size()), m_expInputs.size());
    int logMisses = 0;
    int expMisses = 0;
    int libmLogMisses = 0;
    int libmExpMisses = 0;
    QString firstMiss;
    for (size_t k = 0; k < m_logInputs.size(); ++k) {
        const float x = m_logInputs[k];
        const uint32_t want = uint32_t(oracle.log.at(qsizetype(k)).toInteger());
        if (std::bit_cast<uint32_t>(TorchGenerator::logf(x, capability)) != want) {
            ++logMisses;
            if (firstMiss.isEmpty())
                firstMiss = u"log(%1)"_s.arg(double(x), 0, 'g', 9);
        }
        libmLogMisses += std::bit_cast<uint32_t>(std::log(x)) != want;
    }
    for (size_t k = 0; k < m_expInputs.size(); ++k) {
        const float x = m_expInputs[k];
        const uint32_t want = uint32_t(oracle.exp.at(qsizetype(k)).toInteger());
        if (std::bit_cast<uint32_t>(TorchGenerator::expf(x, capability)) != want) {
            ++expMisses;
            if (firstMiss.isEmpty())
                firstMiss = u"exp(%1)"_s.arg(double(x), 0, 'g', 9);
        }
        libmExpMisses += std::bit_cast<uint32_t>(std::exp(x)) != want;
    }
    qInfo("torch.log: %d of %zu differ (std::log: %d); torch.exp: %d of %zu differ (std::exp: %d)",
          logMisses, m_logInputs.size(), libmLogMisses, expMisses, m_expInputs.size(),
          libmExpMisses);
    QVERIFY2(logMisses == 0 && expMisses == 0, qPrintable(firstMiss));
}

void TestTorchRng::logExp()
{
    compareLogExp(m_native, TorchGenerator::detectedCpuCapability());
}

void TestTorchRng::logExpDefaultKernels()
{
    compareLogExp(m_default, TorchCpuCapability::Default);
}

void TestTorchRng::benchmarkRandom()
{
    TorchGenerator g(1);
    uint32_t sink = 0;
    QBENCHMARK
    {
        for (int k = 0; k < 100000; ++k)
            sink ^= g.random();
    }
    QVERIFY(sink != 0);
}

QTEST_GUILESS_MAIN(TestTorchRng)
#include "tst_torchrng.moc"
