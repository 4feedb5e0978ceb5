#include "transforms/transforms.h"

#include "image/imageprobe.h"
#include "image/pilops.h"
#include "transforms/torchrng.h"

#include <QPointF>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

namespace ifs {

namespace {

using V = TransformValue;

enum class Op {
    Resize,
    CenterCrop,
    RandomCrop,
    RandomResizedCrop,
    RandomHorizontalFlip,
    RandomVerticalFlip,
    RandomRotation,
    RandomAffine,
    ColorJitter,
    Grayscale,
    RandomGrayscale,
    GaussianBlur,
    Pad,
    ToTensor,
    Normalize,
    RandomErasing,
};

struct Range
{
    double lo = 0.0;
    double hi = 0.0;
};

/// One prepared step: the union of every transform's parameters, only those of `op` are used.
struct Step
{
    Op op = Op::ToTensor;
    QString name;
    std::vector<int> size; ///< Resize: [s] (shorter side) or [h, w]; crops: [h, w]
    pil::Filter filter = pil::Filter::Bilinear;
    std::optional<int> maxSize;
    std::optional<std::array<int, 4>> padding; ///< left, top, right, bottom
    bool padIfNeeded = false;
    std::vector<double> fill{0.0}; ///< as written: one value or one per channel
    pil::PadMode padMode = pil::PadMode::Constant;
    Range scale;
    Range ratio;
    double p = 0.5;
    Range degrees;
    bool expand = false;
    std::optional<QPointF> center;
    std::optional<Range> translate;
    std::optional<Range> scaleRange;
    std::vector<double> shear; ///< empty, 2 or 4 values
    std::optional<Range> brightness, contrast, saturation, hue;
    int numOutputChannels = 1;
    int kernelX = 0, kernelY = 0;
    Range sigma;
    std::vector<float> mean, std;
    bool eraseRandom = false;
    std::vector<double> eraseValue;

    bool isRandom() const
    {
        switch (op) {
        case Op::RandomCrop:
        case Op::RandomResizedCrop:
        case Op::RandomHorizontalFlip:
        case Op::RandomVerticalFlip:
        case Op::RandomRotation:
        case Op::RandomAffine:
        case Op::ColorJitter:
        case Op::RandomGrayscale:
        case Op::GaussianBlur:
        case Op::RandomErasing:
            return true;
        default:
            return false;
        }
    }
};

/// Thrown inside compile()/run() and turned into an Error at their boundary.
struct StepError
{
    QString message;
};

[[noreturn]] void fail(const QString &message)
{
    throw StepError{message};
}

bool isNumber(const V &v)
{
    return v.kind == V::Kind::Int || v.kind == V::Kind::Float;
}

bool isSequence(const V &v)
{
    return v.kind == V::Kind::Tuple || v.kind == V::Kind::List;
}

double number(const V &v, const QString &what)
{
    if (v.kind == V::Kind::Int)
        return double(v.intValue);
    if (v.kind == V::Kind::Float)
        return v.floatValue;
    if (v.kind == V::Kind::Bool)
        return v.boolValue ? 1.0 : 0.0; // Python's bool is an int
    fail(QStringLiteral("%1 must be a number, not %2").arg(what, toPythonLiteral(v)));
}

int integer(const V &v, const QString &what)
{
    if (v.kind == V::Kind::Int && v.intValue >= -(1LL << 30) && v.intValue <= (1LL << 30))
        return int(v.intValue);
    if (v.kind == V::Kind::Int)
        fail(QStringLiteral("%1 = %2 is out of range").arg(what).arg(v.intValue));
    fail(QStringLiteral("%1 must be an int, not %2").arg(what, toPythonLiteral(v)));
}

bool boolean(const V &v, const QString &what)
{
    if (v.kind == V::Kind::Bool)
        return v.boolValue;
    if (v.kind == V::Kind::Int)
        return v.intValue != 0;
    fail(QStringLiteral("%1 must be True or False, not %2").arg(what, toPythonLiteral(v)));
}

std::vector<double> numbers(const V &v, const QString &what)
{
    if (!isSequence(v))
        fail(QStringLiteral("%1 must be a tuple or list of numbers, not %2")
                 .arg(what, toPythonLiteral(v)));
    std::vector<double> out;
    for (const V &item : v.items)
        out.push_back(number(item, what));
    return out;
}

Range pair(const V &v, const QString &what)
{
    const std::vector<double> values = numbers(v, what);
    if (values.size() != 2)
        fail(QStringLiteral("%1 must be a (min, max) pair, not %2").arg(what, toPythonLiteral(v)));
    return {values[0], values[1]};
}

/// torchvision's _setup_size: an int, or a sequence of one or two ints, as (h, w).
std::vector<int> sizePair(const V &v, const QString &what)
{
    if (v.kind == V::Kind::Int) {
        const int s = integer(v, what);
        return {s, s};
    }
    if (v.kind == V::Kind::Float) {
        const int s = int(v.floatValue); // _setup_size does int(size) on numbers
        return {s, s};
    }
    if (isSequence(v) && (v.items.size() == 1 || v.items.size() == 2)) {
        const int h = integer(v.items[0], what);
        const int w = v.items.size() == 2 ? integer(v.items[1], what) : h;
        return {h, w};
    }
    fail(QStringLiteral("%1 must be an int or an (h, w) pair, not %2")
             .arg(what, toPythonLiteral(v)));
}

pil::Filter interpolation(const V &v)
{
    QString member = v.text;
    if (v.kind == V::Kind::Int) {
        // torchvision 0.14 still accepts PIL's integer constants (deprecated).
        static const std::map<qint64, QString> fromInt{
            {0, QStringLiteral("NEAREST")}, {2, QStringLiteral("BILINEAR")},
            {3, QStringLiteral("BICUBIC")}, {4, QStringLiteral("BOX")},
            {5, QStringLiteral("HAMMING")}, {1, QStringLiteral("LANCZOS")}};
        const auto it = fromInt.find(v.intValue);
        if (it == fromInt.end())
            fail(QStringLiteral("interpolation %1 is not a PIL resampling filter").arg(v.intValue));
        member = it->second;
    } else if (v.kind != V::Kind::Enum) {
        fail(QStringLiteral("interpolation must be an InterpolationMode, not %1")
                 .arg(toPythonLiteral(v)));
    }
    if (member == u"NEAREST")
        return pil::Filter::Nearest;
    if (member == u"BILINEAR")
        return pil::Filter::Bilinear;
    if (member == u"BICUBIC")
        return pil::Filter::Bicubic;
    if (member == u"BOX")
        return pil::Filter::Box;
    if (member == u"HAMMING")
        return pil::Filter::Hamming;
    if (member == u"LANCZOS")
        return pil::Filter::Lanczos;
    fail(QStringLiteral("InterpolationMode.%1 works on tensors only in torchvision 0.14, and this "
                        "step sees a PIL image: use NEAREST")
             .arg(member));
}

std::vector<double> fillValues(const V &v)
{
    if (v.kind == V::Kind::None)
        return {0.0};
    if (isNumber(v))
        return {number(v, QStringLiteral("fill"))};
    if (isSequence(v))
        return numbers(v, QStringLiteral("fill"));
    fail(QStringLiteral("fill must be a number or a sequence, not %1").arg(toPythonLiteral(v)));
}

pil::PadMode padMode(const V &v)
{
    if (v.kind == V::Kind::String) {
        if (v.text == u"constant")
            return pil::PadMode::Constant;
        if (v.text == u"edge")
            return pil::PadMode::Edge;
        if (v.text == u"reflect")
            return pil::PadMode::Reflect;
        if (v.text == u"symmetric")
            return pil::PadMode::Symmetric;
    }
    fail(QStringLiteral("padding_mode must be 'constant', 'edge', 'reflect' or 'symmetric', not %1")
             .arg(toPythonLiteral(v)));
}

/// F.pad's padding: an int, or 1, 2 (left/right, top/bottom) or 4 (left, top, right, bottom)
/// values.
std::array<int, 4> paddingLtrb(const V &v)
{
    std::vector<int> p;
    if (v.kind == V::Kind::Int) {
        p = {integer(v, QStringLiteral("padding"))};
    } else if (isSequence(v)) {
        for (const V &item : v.items)
            p.push_back(integer(item, QStringLiteral("padding")));
    } else {
        fail(QStringLiteral("padding must be an int or a tuple, not %1").arg(toPythonLiteral(v)));
    }
    std::array<int, 4> ltrb{};
    if (p.size() == 1)
        ltrb = {p[0], p[0], p[0], p[0]};
    else if (p.size() == 2)
        ltrb = {p[0], p[1], p[0], p[1]};
    else if (p.size() == 4)
        ltrb = {p[0], p[1], p[2], p[3]};
    else
        fail(QStringLiteral("padding must be an int or a 1, 2 or 4 element tuple, not %1 elements")
                 .arg(p.size()));
    for (int x : ltrb)
        if (x < 0)
            fail(QStringLiteral("negative padding (cropping) is not supported: use a crop"));
    return ltrb;
}

/// torchvision's _setup_angle: a number x means (-x, x).
Range angleRange(const V &v, const QString &what)
{
    if (isNumber(v)) {
        const double x = number(v, what);
        if (x < 0)
            fail(QStringLiteral("If %1 is a single number, it must be positive").arg(what));
        return {-x, x};
    }
    return pair(v, what);
}

/// ColorJitter._check_input.
std::optional<Range> jitterRange(const V &v, const QString &what, double center, Range bound,
                                 bool clipFirstOnZero)
{
    Range r;
    if (isNumber(v)) {
        const double x = number(v, what);
        if (x < 0)
            fail(QStringLiteral("If %1 is a single number, it must be non negative").arg(what));
        r = {center - x, center + x};
        if (clipFirstOnZero)
            r.lo = std::max(r.lo, 0.0);
    } else if (isSequence(v) && v.items.size() == 2) {
        r = pair(v, what);
        if (!(bound.lo <= r.lo && r.lo <= r.hi && r.hi <= bound.hi))
            fail(QStringLiteral("%1 values should be between (%2, %3) and in increasing order")
                     .arg(what, toPythonLiteral(V::real(bound.lo)),
                          std::isinf(bound.hi) ? QStringLiteral("inf")
                                               : toPythonLiteral(V::real(bound.hi))));
    } else {
        fail(
            QStringLiteral("%1 should be a single number or a list/tuple with length 2").arg(what));
    }
    if (r.lo == center && r.hi == center)
        return std::nullopt;
    return r;
}

double probability(const V &v)
{
    const double p = number(v, QStringLiteral("p"));
    if (p < 0.0 || p > 1.0)
        fail(QStringLiteral("p must be between 0 and 1, not %1").arg(toPythonLiteral(v)));
    return p;
}

Step prepare(const TransformStep &bound)
{
    const TransformSignature *signature = findTransform(bound.name);
    // Every parameter by name, defaults filled in.
    std::map<QString, V> a;
    for (const TransformParameter &param : signature->parameters)
        if (!param.required)
            a[param.name] = param.defaultValue;
    int positional = 0;
    for (const TransformArgument &arg : bound.args) {
        if (arg.keyword.isEmpty())
            a[signature->parameters[positional++].name] = arg.value;
        else
            a[arg.keyword] = arg.value;
    }
    auto arg = [&a](const char16_t *name) -> const V & {
        return a[QString::fromUtf16(name)];
    };

    Step s;
    s.name = bound.name;
    const QString &n = bound.name;
    if (n == u"Resize") {
        s.op = Op::Resize;
        const V &size = arg(u"size");
        if (size.kind == V::Kind::Int) {
            s.size = {integer(size, QStringLiteral("size"))};
        } else if (isSequence(size) && (size.items.size() == 1 || size.items.size() == 2)) {
            for (const V &item : size.items)
                s.size.push_back(integer(item, QStringLiteral("size")));
        } else {
            fail(QStringLiteral("size must be an int or a 1 or 2 element tuple/list, not %1")
                     .arg(toPythonLiteral(size)));
        }
        for (int x : s.size)
            if (x <= 0)
                fail(QStringLiteral("size must be positive, not %1").arg(x));
        s.filter = interpolation(arg(u"interpolation"));
        if (arg(u"max_size").kind != V::Kind::None) {
            s.maxSize = integer(arg(u"max_size"), QStringLiteral("max_size"));
            if (s.size.size() != 1)
                fail(QStringLiteral("max_size should only be passed if size specifies the length "
                                    "of the smaller edge, i.e. size should be an int"));
            if (*s.maxSize <= s.size[0])
                fail(QStringLiteral("max_size = %1 must be strictly greater than the requested "
                                    "size for the smaller edge size = %2")
                         .arg(*s.maxSize)
                         .arg(s.size[0]));
        }
    } else if (n == u"CenterCrop") {
        s.op = Op::CenterCrop;
        s.size = sizePair(arg(u"size"), QStringLiteral("size"));
    } else if (n == u"RandomCrop") {
        s.op = Op::RandomCrop;
        s.size = sizePair(arg(u"size"), QStringLiteral("size"));
        if (arg(u"padding").kind != V::Kind::None)
            s.padding = paddingLtrb(arg(u"padding"));
        s.padIfNeeded = boolean(arg(u"pad_if_needed"), QStringLiteral("pad_if_needed"));
        s.fill = fillValues(arg(u"fill"));
        s.padMode = padMode(arg(u"padding_mode"));
    } else if (n == u"RandomResizedCrop") {
        s.op = Op::RandomResizedCrop;
        s.size = sizePair(arg(u"size"), QStringLiteral("size"));
        s.scale = pair(arg(u"scale"), QStringLiteral("scale"));
        s.ratio = pair(arg(u"ratio"), QStringLiteral("ratio"));
        if (s.ratio.lo <= 0 || s.ratio.hi <= 0)
            fail(QStringLiteral("ratio values must be positive (their logarithms are taken)"));
        s.filter = interpolation(arg(u"interpolation"));
    } else if (n == u"RandomHorizontalFlip" || n == u"RandomVerticalFlip") {
        s.op = n == u"RandomHorizontalFlip" ? Op::RandomHorizontalFlip : Op::RandomVerticalFlip;
        s.p = number(arg(u"p"), QStringLiteral("p"));
    } else if (n == u"RandomRotation") {
        s.op = Op::RandomRotation;
        s.degrees = angleRange(arg(u"degrees"), QStringLiteral("degrees"));
        s.filter = interpolation(arg(u"interpolation"));
        if (s.filter != pil::Filter::Nearest && s.filter != pil::Filter::Bilinear
            && s.filter != pil::Filter::Bicubic)
            fail(QStringLiteral("rotation supports NEAREST, BILINEAR and BICUBIC only"));
        s.expand = boolean(arg(u"expand"), QStringLiteral("expand"));
        if (arg(u"center").kind != V::Kind::None) {
            const Range c = pair(arg(u"center"), QStringLiteral("center"));
            s.center = QPointF(c.lo, c.hi);
        }
        s.fill = fillValues(arg(u"fill"));
    } else if (n == u"RandomAffine") {
        s.op = Op::RandomAffine;
        s.degrees = angleRange(arg(u"degrees"), QStringLiteral("degrees"));
        if (arg(u"translate").kind != V::Kind::None) {
            s.translate = pair(arg(u"translate"), QStringLiteral("translate"));
            for (double t : {s.translate->lo, s.translate->hi})
                if (t < 0.0 || t > 1.0)
                    fail(QStringLiteral("translation values should be between 0 and 1"));
        }
        if (arg(u"scale").kind != V::Kind::None) {
            s.scaleRange = pair(arg(u"scale"), QStringLiteral("scale"));
            if (s.scaleRange->lo <= 0 || s.scaleRange->hi <= 0)
                fail(QStringLiteral("scale values should be positive"));
        }
        const V &shear = arg(u"shear");
        if (shear.kind != V::Kind::None) {
            if (isNumber(shear)) {
                const Range r = angleRange(shear, QStringLiteral("shear"));
                s.shear = {r.lo, r.hi};
            } else {
                s.shear = numbers(shear, QStringLiteral("shear"));
                if (s.shear.size() != 2 && s.shear.size() != 4)
                    fail(QStringLiteral("shear should be a sequence of length 2 or 4"));
            }
        }
        s.filter = interpolation(arg(u"interpolation"));
        if (s.filter != pil::Filter::Nearest && s.filter != pil::Filter::Bilinear
            && s.filter != pil::Filter::Bicubic)
            fail(QStringLiteral("affine supports NEAREST, BILINEAR and BICUBIC only"));
        s.fill = fillValues(arg(u"fill"));
        if (arg(u"center").kind != V::Kind::None) {
            const Range c = pair(arg(u"center"), QStringLiteral("center"));
            s.center = QPointF(c.lo, c.hi);
        }
    } else if (n == u"ColorJitter") {
        s.op = Op::ColorJitter;
        const Range unbounded{0.0, std::numeric_limits<double>::infinity()};
        s.brightness
            = jitterRange(arg(u"brightness"), QStringLiteral("brightness"), 1.0, unbounded, true);
        s.contrast
            = jitterRange(arg(u"contrast"), QStringLiteral("contrast"), 1.0, unbounded, true);
        s.saturation
            = jitterRange(arg(u"saturation"), QStringLiteral("saturation"), 1.0, unbounded, true);
        s.hue = jitterRange(arg(u"hue"), QStringLiteral("hue"), 0.0, {-0.5, 0.5}, false);
        if (s.hue && (s.hue->lo < -0.5 || s.hue->hi > 0.5))
            fail(QStringLiteral("hue must be at most 0.5 (F.adjust_hue refuses a hue factor "
                                "outside [-0.5, 0.5])"));
    } else if (n == u"Grayscale") {
        s.op = Op::Grayscale;
        s.numOutputChannels
            = integer(arg(u"num_output_channels"), QStringLiteral("num_output_channels"));
        if (s.numOutputChannels != 1 && s.numOutputChannels != 3)
            fail(QStringLiteral("num_output_channels should be either 1 or 3"));
    } else if (n == u"RandomGrayscale") {
        s.op = Op::RandomGrayscale;
        s.p = number(arg(u"p"), QStringLiteral("p"));
    } else if (n == u"GaussianBlur") {
        s.op = Op::GaussianBlur;
        const std::vector<int> k = sizePair(arg(u"kernel_size"), QStringLiteral("kernel_size"));
        s.kernelX = k[0];
        s.kernelY = k[1];
        for (int x : k)
            if (x <= 0 || x % 2 == 0)
                fail(QStringLiteral("Kernel size value should be an odd and positive number"));
        const V &sigma = arg(u"sigma");
        if (isNumber(sigma)) {
            const double x = number(sigma, QStringLiteral("sigma"));
            if (x <= 0)
                fail(QStringLiteral("If sigma is a single number, it must be positive"));
            s.sigma = {x, x};
        } else {
            s.sigma = pair(sigma, QStringLiteral("sigma"));
            if (!(0.0 < s.sigma.lo && s.sigma.lo <= s.sigma.hi))
                fail(QStringLiteral("sigma values should be positive and of the form (min, max)"));
        }
    } else if (n == u"Pad") {
        s.op = Op::Pad;
        s.padding = paddingLtrb(arg(u"padding"));
        s.fill = fillValues(arg(u"fill"));
        s.padMode = padMode(arg(u"padding_mode"));
    } else if (n == u"ToTensor") {
        s.op = Op::ToTensor;
    } else if (n == u"Normalize") {
        s.op = Op::Normalize;
        const V &mean = arg(u"mean");
        const V &std = arg(u"std");
        for (double x : isNumber(mean) ? std::vector<double>{number(mean, QStringLiteral("mean"))}
                                       : numbers(mean, QStringLiteral("mean")))
            s.mean.push_back(float(x));
        for (double x : isNumber(std) ? std::vector<double>{number(std, QStringLiteral("std"))}
                                      : numbers(std, QStringLiteral("std")))
            s.std.push_back(float(x));
        if (s.mean.empty() || s.std.empty())
            fail(QStringLiteral("mean and std must not be empty"));
        for (float x : s.std)
            if (x == 0.0f)
                fail(QStringLiteral("std evaluated to zero after conversion to float32, leading "
                                    "to division by zero"));
    } else if (n == u"RandomErasing") {
        s.op = Op::RandomErasing;
        s.p = probability(arg(u"p"));
        s.scale = pair(arg(u"scale"), QStringLiteral("scale"));
        s.ratio = pair(arg(u"ratio"), QStringLiteral("ratio"));
        if (s.scale.lo < 0 || s.scale.hi > 1)
            fail(QStringLiteral("Scale should be between 0 and 1"));
        if (s.ratio.lo <= 0 || s.ratio.hi <= 0)
            fail(QStringLiteral("ratio values must be positive (their logarithms are taken)"));
        const V &value = arg(u"value");
        if (value.kind == V::Kind::String) {
            if (value.text != u"random")
                fail(QStringLiteral("If value is str, it should be 'random'"));
            s.eraseRandom = true;
        } else if (isNumber(value)) {
            s.eraseValue = {number(value, QStringLiteral("value"))};
        } else if (isSequence(value)) {
            s.eraseValue = numbers(value, QStringLiteral("value"));
        } else {
            fail(QStringLiteral("Argument value should be either a number or str or a sequence"));
        }
    } else {
        fail(QStringLiteral("is not supported by the engine"));
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// Coordinates: where the current image's pixels came from in the input, to draw crop boxes.

struct AxisMap
{
    double scale = 1.0;
    double offset = 0.0;
    double map(double x) const { return scale * x + offset; }
};

struct CoordMap
{
    AxisMap x, y;
    bool valid = true;

    void crop(double left, double top)
    {
        x.offset += x.scale * left;
        y.offset += y.scale * top;
    }
    void resize(QSize from, QSize to)
    {
        x.scale *= double(from.width()) / to.width();
        y.scale *= double(from.height()) / to.height();
    }
    void flipX(int width)
    {
        x.offset += x.scale * width;
        x.scale = -x.scale;
    }
    void flipY(int height)
    {
        y.offset += y.scale * height;
        y.scale = -y.scale;
    }
    QRectF region(double left, double top, double w, double h) const
    {
        if (!valid)
            return {};
        const double x0 = x.map(left), x1 = x.map(left + w);
        const double y0 = y.map(top), y1 = y.map(top + h);
        return QRectF(QPointF(std::min(x0, x1), std::min(y0, y1)),
                      QPointF(std::max(x0, x1), std::max(y0, y1)));
    }
};

// ---------------------------------------------------------------------------------------------
// Tensor operations (after ToTensor), as torchvision's tensor code does them.

ImageTensor tensorCrop(const ImageTensor &t, int top, int left, int h, int w)
{
    // F_t.crop: the parts outside the tensor are zero.
    ImageTensor out;
    out.channels = t.channels;
    out.height = h;
    out.width = w;
    out.data.assign(size_t(out.numel()), 0.0f);
    for (int c = 0; c < t.channels; ++c)
        for (int y = 0; y < h; ++y) {
            const int sy = top + y;
            if (sy < 0 || sy >= t.height)
                continue;
            for (int x = 0; x < w; ++x) {
                const int sx = left + x;
                if (sx >= 0 && sx < t.width)
                    out.at(c, y, x) = t.at(c, sy, sx);
            }
        }
    return out;
}

/// Index of the source pixel for a padded position, numpy.pad's modes (torch's replicate,
/// reflect and F_t's symmetric agree with them).
int padIndex(int i, int n, pil::PadMode mode)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == pil::PadMode::Edge)
        return std::clamp(i, 0, n - 1);
    if (n == 1)
        return 0;
    if (mode == pil::PadMode::Reflect) {
        const int period = 2 * (n - 1);
        int k = i % period;
        if (k < 0)
            k += period;
        return k < n ? k : period - k;
    }
    // Symmetric: the edge pixel is repeated.
    const int period = 2 * n;
    int k = i % period;
    if (k < 0)
        k += period;
    return k < n ? k : period - 1 - k;
}

ImageTensor tensorPad(const ImageTensor &t, const std::array<int, 4> &ltrb, pil::PadMode mode,
                      float fill)
{
    ImageTensor out;
    out.channels = t.channels;
    out.width = t.width + ltrb[0] + ltrb[2];
    out.height = t.height + ltrb[1] + ltrb[3];
    out.data.assign(size_t(out.numel()), fill);
    for (int c = 0; c < t.channels; ++c)
        for (int y = 0; y < out.height; ++y) {
            const int sy0 = y - ltrb[1];
            if (mode == pil::PadMode::Constant && (sy0 < 0 || sy0 >= t.height))
                continue;
            const int sy = padIndex(sy0, t.height, mode);
            for (int x = 0; x < out.width; ++x) {
                const int sx0 = x - ltrb[0];
                if (mode == pil::PadMode::Constant && (sx0 < 0 || sx0 >= t.width))
                    continue;
                out.at(c, y, x) = t.at(c, sy, padIndex(sx0, t.width, mode));
            }
        }
    return out;
}

void tensorFlipX(ImageTensor &t)
{
    for (int c = 0; c < t.channels; ++c)
        for (int y = 0; y < t.height; ++y) {
            float *row = t.plane(c) + qsizetype(y) * t.width;
            std::reverse(row, row + t.width);
        }
}

void tensorFlipY(ImageTensor &t)
{
    for (int c = 0; c < t.channels; ++c)
        for (int y = 0; y < t.height / 2; ++y)
            std::swap_ranges(t.plane(c) + qsizetype(y) * t.width,
                             t.plane(c) + qsizetype(y + 1) * t.width,
                             t.plane(c) + qsizetype(t.height - 1 - y) * t.width);
}

/// F_t.rgb_to_grayscale on float: (0.2989 r + 0.587 g + 0.114 b), in float32, summed left to
/// right as torch evaluates the expression.
ImageTensor tensorGray(const ImageTensor &t, int outChannels)
{
    if (t.channels == 1) {
        if (outChannels == 1)
            return t;
    } else if (t.channels != 3) {
        fail(QStringLiteral("grayscale needs 1 or 3 channels, not %1").arg(t.channels));
    }
    ImageTensor out;
    out.channels = outChannels;
    out.height = t.height;
    out.width = t.width;
    out.data.resize(size_t(out.numel()));
    const qsizetype n = qsizetype(t.height) * t.width;
    float *dst = out.plane(0);
    if (t.channels == 1) {
        std::copy(t.plane(0), t.plane(0) + n, dst);
    } else {
        const float *r = t.plane(0), *g = t.plane(1), *b = t.plane(2);
        for (qsizetype i = 0; i < n; ++i)
            dst[i] = (0.2989f * r[i] + 0.587f * g[i]) + 0.114f * b[i];
    }
    for (int c = 1; c < outChannels; ++c)
        std::copy(dst, dst + n, out.plane(c));
    return out;
}

// ---------------------------------------------------------------------------------------------

pil::Fill pilFill(const std::vector<double> &fill, int channels)
{
    // F_pil._parse_fill: one number is repeated; a sequence must have one value per channel;
    // values become int() (truncation).
    if (fill.size() != 1 && int(fill.size()) != channels)
        fail(QStringLiteral("The number of elements in 'fill' does not match the number of "
                            "channels of the image (%1 != %2)")
                 .arg(fill.size())
                 .arg(channels));
    pil::Fill out{};
    for (int c = 0; c < 3; ++c) {
        const double v = fill.size() == 1 ? fill[0] : fill[size_t(std::min(c, channels - 1))];
        out[size_t(c)] = std::clamp(int(v), 0, 255);
    }
    return out;
}

/// Python's round() (half to even) of a double to an int.
int pyRound(double x)
{
    return int(std::nearbyint(x)); // the default rounding mode is to nearest, ties to even
}

QString fmt(double x)
{
    return QString::number(x, 'g', 4);
}

QImage asPilImage(const QImage &image)
{
    if (image.format() == QImage::Format_RGB888 || image.format() == QImage::Format_Grayscale8)
        return image;
    return image.convertToFormat(QImage::Format_RGB888);
}

int channelsOf(const QImage &image)
{
    return image.format() == QImage::Format_Grayscale8 ? 1 : 3;
}

/// The state of one run.
struct Runner
{
    TorchGenerator &rng;
    TransformData data;
    CoordMap coords;
    StepTrace *trace = nullptr;

    QSize size() const { return data.size(); }

    void requireImage(const Step &s)
    {
        if (data.isTensor())
            fail(QStringLiteral("works on PIL images here, and this step comes after ToTensor: "
                                "move it before ToTensor (torchvision's tensor version resamples "
                                "differently)"));
    }

    void requireTensor(const Step &s)
    {
        if (!data.isTensor())
            fail(QStringLiteral("needs a tensor, and the image is still a PIL image: put "
                                "ToTensor() before it (torchvision raises \"img should be Tensor "
                                "Image\")"));
    }

    void setRegion(double left, double top, double w, double h)
    {
        trace->regionInInput = coords.region(left, top, w, h);
    }

    void crop(int top, int left, int h, int w)
    {
        setRegion(left, top, w, h);
        if (data.isTensor())
            data.tensor = tensorCrop(data.tensor, top, left, h, w);
        else
            data.image = pil::crop(data.image, QRect(left, top, w, h));
        coords.crop(left, top);
    }

    void resizeTo(int h, int w, pil::Filter filter)
    {
        const QSize from = size();
        const QSize to(w, h);
        if (from == to)
            return; // F.resize returns the image as it is
        data.image = pil::resize(data.image, to, filter);
        coords.resize(from, to);
    }

    void pad(const std::array<int, 4> &ltrb, pil::PadMode mode, const std::vector<double> &fill)
    {
        if (data.isTensor()) {
            if (fill.size() != 1)
                fail(QStringLiteral("a tensor is padded with one fill value"));
            data.tensor = tensorPad(data.tensor, ltrb, mode, float(fill[0]));
        } else {
            data.image = pil::pad(data.image, ltrb[0], ltrb[1], ltrb[2], ltrb[3], mode,
                                  pilFill(fill, channelsOf(data.image)));
        }
        coords.crop(-ltrb[0], -ltrb[1]);
    }

    /// torch.rand(1) < p: a float32 draw compared with p in float32.
    bool coin(double p) { return float(rng.rand()) < float(p); }

    /// torch.log(torch.tensor(ratio)): float32 logarithms, widened to double for uniform_.
    std::pair<double, double> logRatio(Range ratio)
    {
        return {double(TorchGenerator::logf(float(ratio.lo))),
                double(TorchGenerator::logf(float(ratio.hi)))};
    }

    void apply(const Step &s);
};

void Runner::apply(const Step &s)
{
    switch (s.op) {
    case Op::Resize: {
        requireImage(s);
        const QSize in = size();
        int h, w;
        if (s.size.size() == 1) {
            // _compute_resized_output_size
            const int shortSide = std::min(in.width(), in.height());
            const int longSide = std::max(in.width(), in.height());
            int newShort = s.size[0];
            int newLong = int(double(newShort) * longSide / shortSide);
            if (s.maxSize && newLong > *s.maxSize) {
                newShort = int(double(*s.maxSize) * newShort / newLong);
                newLong = *s.maxSize;
            }
            if (in.width() <= in.height()) {
                w = newShort;
                h = newLong;
            } else {
                w = newLong;
                h = newShort;
            }
        } else {
            h = s.size[0];
            w = s.size[1];
        }
        if (h <= 0 || w <= 0)
            fail(QStringLiteral("the %1 × %2 image would become %3 × %4 pixels")
                     .arg(in.width())
                     .arg(in.height())
                     .arg(w)
                     .arg(h));
        resizeTo(h, w, s.filter);
        trace->summary
            = QStringLiteral("%1 × %2 → %3 × %4").arg(in.width()).arg(in.height()).arg(w).arg(h);
        break;
    }
    case Op::CenterCrop: {
        int imageH = size().height(), imageW = size().width();
        const int cropH = s.size[0], cropW = s.size[1];
        if (cropW > imageW || cropH > imageH) {
            const std::array<int, 4> ltrb{
                cropW > imageW ? (cropW - imageW) / 2 : 0,
                cropH > imageH ? (cropH - imageH) / 2 : 0,
                cropW > imageW ? (cropW - imageW + 1) / 2 : 0,
                cropH > imageH ? (cropH - imageH + 1) / 2 : 0,
            };
            pad(ltrb, pil::PadMode::Constant, {0.0});
            imageH = size().height();
            imageW = size().width();
            trace->summary = QStringLiteral("padded to %1 × %2").arg(imageW).arg(imageH);
            if (cropW == imageW && cropH == imageH) {
                setRegion(0, 0, imageW, imageH);
                break;
            }
        }
        const int top = pyRound((imageH - cropH) / 2.0);
        const int left = pyRound((imageW - cropW) / 2.0);
        crop(top, left, cropH, cropW);
        trace->summary
            = QStringLiteral("i=%1, j=%2, h=%3, w=%4").arg(top).arg(left).arg(cropH).arg(cropW);
        break;
    }
    case Op::RandomCrop: {
        if (s.padding)
            pad(*s.padding, s.padMode, s.fill);
        if (s.padIfNeeded && size().width() < s.size[1]) {
            const int d = s.size[1] - size().width();
            pad({d, 0, d, 0}, s.padMode, s.fill); // torchvision pads both sides by the difference
        }
        if (s.padIfNeeded && size().height() < s.size[0]) {
            const int d = s.size[0] - size().height();
            pad({0, d, 0, d}, s.padMode, s.fill);
        }
        const int h = size().height(), w = size().width();
        const int th = s.size[0], tw = s.size[1];
        if (h < th || w < tw)
            fail(QStringLiteral("Required crop size (%1, %2) is larger than input image size "
                                "(%3, %4): add pad_if_needed=True or resize first")
                     .arg(th)
                     .arg(tw)
                     .arg(h)
                     .arg(w));
        int i = 0, j = 0;
        if (!(w == tw && h == th)) {
            i = int(rng.randint(0, h - th + 1));
            j = int(rng.randint(0, w - tw + 1));
        }
        crop(i, j, th, tw);
        trace->summary = QStringLiteral("i=%1, j=%2, h=%3, w=%4").arg(i).arg(j).arg(th).arg(tw);
        break;
    }
    case Op::RandomResizedCrop: {
        requireImage(s);
        const CropBox box = sampleResizedCrop(size().width(), size().height(), s.scale.lo,
                                              s.scale.hi, s.ratio.lo, s.ratio.hi, rng);
        const int i = box.top, j = box.left, h = box.height, w = box.width;
        const bool found = !box.fallback;
        crop(i, j, h, w);
        resizeTo(s.size[0], s.size[1], s.filter);
        trace->summary = QStringLiteral("i=%1, j=%2, h=%3, w=%4%5 → %6 × %7")
                             .arg(i)
                             .arg(j)
                             .arg(h)
                             .arg(w)
                             .arg(found ? QString() : QStringLiteral(" (central fallback)"))
                             .arg(s.size[1])
                             .arg(s.size[0]);
        break;
    }
    case Op::RandomHorizontalFlip:
    case Op::RandomVerticalFlip: {
        const bool horizontal = s.op == Op::RandomHorizontalFlip;
        trace->applied = coin(s.p);
        if (trace->applied) {
            if (data.isTensor())
                horizontal ? tensorFlipX(data.tensor) : tensorFlipY(data.tensor);
            else
                data.image
                    = horizontal ? pil::flipLeftRight(data.image) : pil::flipTopBottom(data.image);
            horizontal ? coords.flipX(size().width()) : coords.flipY(size().height());
        }
        trace->summary = trace->applied ? QStringLiteral("flipped") : QStringLiteral("not flipped");
        break;
    }
    case Op::RandomRotation: {
        requireImage(s);
        const double angle = rng.uniform(s.degrees.lo, s.degrees.hi);
        data.image = pil::rotate(data.image, angle, s.filter, s.expand, s.center,
                                 pilFill(s.fill, channelsOf(data.image)));
        coords.valid = false;
        trace->summary = QStringLiteral("angle %1°").arg(fmt(angle));
        break;
    }
    case Op::RandomAffine: {
        requireImage(s);
        const int width = size().width(), height = size().height();
        const double angle = rng.uniform(s.degrees.lo, s.degrees.hi);
        int tx = 0, ty = 0;
        if (s.translate) {
            const double maxDx = s.translate->lo * width;
            const double maxDy = s.translate->hi * height;
            tx = pyRound(rng.uniform(-maxDx, maxDx));
            ty = pyRound(rng.uniform(-maxDy, maxDy));
        }
        const double scale = s.scaleRange ? rng.uniform(s.scaleRange->lo, s.scaleRange->hi) : 1.0;
        double shearX = 0.0, shearY = 0.0;
        if (!s.shear.empty()) {
            shearX = rng.uniform(s.shear[0], s.shear[1]);
            if (s.shear.size() == 4)
                shearY = rng.uniform(s.shear[2], s.shear[3]);
        }
        // F._get_inverse_affine_matrix, the PIL branch of F.affine.
        const QPointF center = s.center ? *s.center : QPointF(width * 0.5, height * 0.5);
        constexpr double kDegree = M_PI / 180.0;
        const double rot = angle * kDegree, sx = shearX * kDegree, sy = shearY * kDegree;
        const double cx = center.x(), cy = center.y();
        const double a = std::cos(rot - sy) / std::cos(sy);
        const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
        const double c = std::sin(rot - sy) / std::cos(sy);
        const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
        std::array<double, 6> m{d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0};
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
        m[2] += cx;
        m[5] += cy;
        data.image = pil::transformAffine(data.image, size(), m, s.filter,
                                          pilFill(s.fill, channelsOf(data.image)));
        coords.valid = false;
        trace->summary = QStringLiteral("angle %1°, translate (%2, %3), scale %4, shear (%5, %6)")
                             .arg(fmt(angle))
                             .arg(tx)
                             .arg(ty)
                             .arg(fmt(scale))
                             .arg(fmt(shearX))
                             .arg(fmt(shearY));
        break;
    }
    case Op::ColorJitter: {
        requireImage(s);
        const std::vector<int64_t> order = rng.randperm(4);
        auto draw = [this](const std::optional<Range> &r) -> std::optional<double> {
            if (!r)
                return std::nullopt;
            return rng.uniform(r->lo, r->hi);
        };
        const std::optional<double> b = draw(s.brightness), c = draw(s.contrast),
                                    sat = draw(s.saturation), hue = draw(s.hue);
        QStringList done;
        for (int64_t fn : order) {
            if (fn == 0 && b) {
                data.image = pil::adjustBrightness(data.image, *b);
                done << QStringLiteral("brightness %1").arg(fmt(*b));
            } else if (fn == 1 && c) {
                data.image = pil::adjustContrast(data.image, *c);
                done << QStringLiteral("contrast %1").arg(fmt(*c));
            } else if (fn == 2 && sat) {
                data.image = pil::adjustSaturation(data.image, *sat);
                done << QStringLiteral("saturation %1").arg(fmt(*sat));
            } else if (fn == 3 && hue) {
                data.image = pil::adjustHue(data.image, *hue);
                done << QStringLiteral("hue %1").arg(fmt(*hue));
            }
        }
        trace->applied = !done.isEmpty();
        trace->summary = done.isEmpty() ? QStringLiteral("no change") : done.join(u", ");
        break;
    }
    case Op::Grayscale:
    case Op::RandomGrayscale: {
        if (s.op == Op::RandomGrayscale) {
            trace->applied = coin(s.p);
            if (!trace->applied) {
                trace->summary = QStringLiteral("kept colour");
                break;
            }
        }
        const int outChannels = s.op == Op::Grayscale ? s.numOutputChannels : data.channels();
        if (data.isTensor()) {
            data.tensor = tensorGray(data.tensor, outChannels);
        } else {
            QImage gray = pil::toGray(data.image);
            data.image = outChannels == 3 ? pil::toRgb(gray) : gray;
        }
        trace->summary = QStringLiteral("gray, %1 channel%2")
                             .arg(outChannels)
                             .arg(outChannels == 1 ? QString() : QStringLiteral("s"));
        break;
    }
    case Op::GaussianBlur: {
        requireImage(s);
        const double sigma = rng.uniform(s.sigma.lo, s.sigma.hi);
        data.image = pil::gaussianBlur(data.image, s.kernelX, s.kernelY, sigma, sigma);
        trace->summary = QStringLiteral("kernel %1 × %2, sigma %3")
                             .arg(s.kernelX)
                             .arg(s.kernelY)
                             .arg(fmt(sigma));
        break;
    }
    case Op::Pad: {
        pad(*s.padding, s.padMode, s.fill);
        trace->summary = QStringLiteral("left %1, top %2, right %3, bottom %4")
                             .arg((*s.padding)[0])
                             .arg((*s.padding)[1])
                             .arg((*s.padding)[2])
                             .arg((*s.padding)[3]);
        break;
    }
    case Op::ToTensor: {
        if (data.isTensor())
            fail(QStringLiteral("the input is already a tensor (ToTensor appears twice?): "
                                "torchvision raises \"pic should be PIL Image or ndarray\""));
        data.tensor = imageToTensor(data.image);
        data.image = QImage();
        trace->summary = QStringLiteral("float32 [%1, %2, %3] in [0, 1]")
                             .arg(data.tensor.channels)
                             .arg(data.tensor.height)
                             .arg(data.tensor.width);
        break;
    }
    case Op::Normalize: {
        requireTensor(s);
        ImageTensor &t = data.tensor;
        auto fits = [&t](size_t n) {
            return n == 1 || int(n) == t.channels;
        };
        if (!fits(s.mean.size()) || !fits(s.std.size()))
            fail(QStringLiteral("mean has %1 and std %2 values for a tensor of %3 channel%4: "
                                "give one value or one per channel")
                     .arg(s.mean.size())
                     .arg(s.std.size())
                     .arg(t.channels)
                     .arg(t.channels == 1 ? QString() : QStringLiteral("s")));
        const qsizetype n = qsizetype(t.height) * t.width;
        for (int c = 0; c < t.channels; ++c) {
            const float m = s.mean[s.mean.size() == 1 ? 0 : size_t(c)];
            const float sd = s.std[s.std.size() == 1 ? 0 : size_t(c)];
            float *p = t.plane(c);
            for (qsizetype i = 0; i < n; ++i)
                p[i] = (p[i] - m) / sd; // sub_ then div_, each rounded to float32
        }
        trace->summary = QStringLiteral("(x − mean) / std per channel");
        break;
    }
    case Op::RandomErasing: {
        requireTensor(s);
        ImageTensor &t = data.tensor;
        trace->applied = coin(s.p);
        if (!trace->applied) {
            trace->summary = QStringLiteral("not erased");
            break;
        }
        if (!s.eraseRandom && s.eraseValue.size() != 1 && int(s.eraseValue.size()) != t.channels)
            fail(QStringLiteral("If value is a sequence, it should have either a single value or "
                                "%1 (number of input channels)")
                     .arg(t.channels));
        const int imgH = t.height, imgW = t.width;
        const double area = double(imgH) * imgW;
        const auto [logLo, logHi] = logRatio(s.ratio);
        for (int attempt = 0; attempt < 10; ++attempt) {
            const double eraseArea = area * rng.uniform(s.scale.lo, s.scale.hi);
            const double aspect = double(TorchGenerator::expf(float(rng.uniform(logLo, logHi))));
            const int h = pyRound(std::sqrt(eraseArea * aspect));
            const int w = pyRound(std::sqrt(eraseArea / aspect));
            if (!(h < imgH && w < imgW))
                continue;
            std::vector<float> noise;
            if (s.eraseRandom) {
                noise.resize(size_t(t.channels) * h * w);
                rng.normal(noise.data(), qsizetype(noise.size()));
            }
            const int i = int(rng.randint(0, imgH - h + 1));
            const int j = int(rng.randint(0, imgW - w + 1));
            for (int c = 0; c < t.channels; ++c)
                for (int y = 0; y < h; ++y)
                    for (int x = 0; x < w; ++x)
                        t.at(c, i + y, j + x) = s.eraseRandom
                            ? noise[(size_t(c) * h + y) * w + x]
                            : float(s.eraseValue[s.eraseValue.size() == 1 ? 0 : size_t(c)]);
            setRegion(j, i, w, h);
            trace->summary = QStringLiteral("i=%1, j=%2, h=%3, w=%4").arg(i).arg(j).arg(h).arg(w);
            return;
        }
        trace->applied = false;
        trace->summary = QStringLiteral("no region fitted in 10 tries: not erased");
        break;
    }
    }
}

} // namespace

CropBox sampleResizedCrop(int width, int height, double scaleLo, double scaleHi, double ratioLo,
                          double ratioHi, TorchGenerator &rng)
{
    const double area = double(height) * width;
    // torch.log(torch.tensor(ratio)): float32 logarithms, widened to double for uniform_.
    const double logLo = double(TorchGenerator::logf(float(ratioLo)));
    const double logHi = double(TorchGenerator::logf(float(ratioHi)));
    for (int attempt = 0; attempt < 10; ++attempt) {
        const double targetArea = area * rng.uniform(scaleLo, scaleHi);
        const double aspect = double(TorchGenerator::expf(float(rng.uniform(logLo, logHi))));
        const int w = pyRound(std::sqrt(targetArea * aspect));
        const int h = pyRound(std::sqrt(targetArea / aspect));
        if (0 < w && w <= width && 0 < h && h <= height) {
            const int i = int(rng.randint(0, height - h + 1));
            const int j = int(rng.randint(0, width - w + 1));
            return {i, j, h, w, false};
        }
    }
    // torchvision's fallback: a central crop of the allowed aspect ratio.
    const double inRatio = double(width) / double(height);
    const double minRatio = std::min(ratioLo, ratioHi);
    const double maxRatio = std::max(ratioLo, ratioHi);
    int w = width, h = height;
    if (inRatio < minRatio)
        h = pyRound(w / minRatio);
    else if (inRatio > maxRatio)
        w = pyRound(h * maxRatio);
    return {(height - h) / 2, (width - w) / 2, h, w, true};
}

// ---------------------------------------------------------------------------------------------

int TransformData::channels() const
{
    if (isTensor())
        return tensor.channels;
    return image.isNull() ? 0 : channelsOf(image);
}

QSize TransformData::size() const
{
    return isTensor() ? QSize(tensor.width, tensor.height) : image.size();
}

QString TransformData::describe() const
{
    if (isTensor())
        return QStringLiteral("tensor float32 [%1, %2, %3]")
            .arg(tensor.channels)
            .arg(tensor.height)
            .arg(tensor.width);
    if (image.isNull())
        return QStringLiteral("nothing");
    return QStringLiteral("PIL Image %1 %2 × %3")
        .arg(channelsOf(image) == 1 ? QStringLiteral("L") : QStringLiteral("RGB"))
        .arg(image.width())
        .arg(image.height());
}

struct CompiledPipeline::Impl
{
    TransformPipeline pipeline;
    std::vector<Step> steps;
};

CompiledPipeline::CompiledPipeline()
    : d(std::make_shared<Impl>())
{ }
CompiledPipeline::~CompiledPipeline() = default;
CompiledPipeline::CompiledPipeline(const CompiledPipeline &) = default;
CompiledPipeline &CompiledPipeline::operator=(const CompiledPipeline &) = default;

Result<CompiledPipeline> CompiledPipeline::compile(const TransformPipeline &pipeline)
{
    auto impl = std::make_shared<Impl>();
    for (qsizetype i = 0; i < pipeline.steps.size(); ++i) {
        const TransformStep &step = pipeline.steps[i];
        const QString where = QStringLiteral("Step %1, %2: ").arg(i + 1).arg(step.name);
        Result<TransformStep> bound = normalizeStep(step);
        if (!bound)
            return Error{where + bound.errorMessage()};
        try {
            impl->steps.push_back(prepare(bound.value()));
        } catch (const StepError &e) {
            return Error{where + e.message};
        }
        impl->pipeline.steps.append(std::move(bound).value());
    }
    CompiledPipeline compiled;
    compiled.d = std::move(impl);
    return compiled;
}

const TransformPipeline &CompiledPipeline::pipeline() const
{
    return d->pipeline;
}

bool CompiledPipeline::isEmpty() const
{
    return d->steps.empty();
}

bool CompiledPipeline::isRandom() const
{
    return std::any_of(d->steps.begin(), d->steps.end(),
                       [](const Step &s) { return s.isRandom(); });
}

std::vector<float> CompiledPipeline::normalizeMean() const
{
    for (auto it = d->steps.rbegin(); it != d->steps.rend(); ++it)
        if (it->op == Op::Normalize)
            return it->mean;
    return {};
}

std::vector<float> CompiledPipeline::normalizeStd() const
{
    for (auto it = d->steps.rbegin(); it != d->steps.rend(); ++it)
        if (it->op == Op::Normalize)
            return it->std;
    return {};
}

std::optional<ResizedCropPlan> CompiledPipeline::resizedCropPlan() const
{
    const std::vector<Step> &steps = d->steps;
    size_t k = 0;
    if (k >= steps.size() || steps[k].op != Op::RandomResizedCrop)
        return std::nullopt;
    ResizedCropPlan plan;
    const Step &rrc = steps[k++];
    plan.outHeight = rrc.size[0];
    plan.outWidth = rrc.size[1];
    plan.scaleLo = rrc.scale.lo;
    plan.scaleHi = rrc.scale.hi;
    plan.ratioLo = rrc.ratio.lo;
    plan.ratioHi = rrc.ratio.hi;
    plan.filter = rrc.filter;
    if (k < steps.size() && steps[k].op == Op::RandomHorizontalFlip)
        plan.flipP = steps[k++].p;
    if (k >= steps.size() || steps[k].op != Op::ToTensor)
        return std::nullopt;
    ++k;
    if (k < steps.size() && steps[k].op == Op::Normalize) {
        plan.mean = steps[k].mean;
        plan.std = steps[k].std;
        ++k;
    }
    if (k != steps.size())
        return std::nullopt;
    return plan;
}

Result<TransformRun> CompiledPipeline::run(const QImage &image, TorchGenerator &rng,
                                           bool trace) const
{
    if (image.isNull())
        return Error{QStringLiteral("No image to transform")};
    TransformRun run;
    Runner runner{rng, {}, {}, nullptr};
    runner.data.image = asPilImage(image);
    for (size_t i = 0; i < d->steps.size(); ++i) {
        const Step &step = d->steps[i];
        StepTrace stepTrace;
        stepTrace.step = int(i);
        stepTrace.name = step.name;
        stepTrace.inputSize = runner.size();
        runner.trace = &stepTrace;
        try {
            runner.apply(step);
        } catch (const StepError &e) {
            return Error{QStringLiteral("Step %1, %2: %3").arg(i + 1).arg(step.name, e.message)};
        }
        if (!runner.data.isTensor() && runner.data.image.isNull())
            return Error{
                QStringLiteral("Step %1, %2: not enough memory").arg(i + 1).arg(step.name)};
        stepTrace.outputSize = runner.size();
        if (trace)
            stepTrace.output = runner.data;
        run.steps.append(std::move(stepTrace));
    }
    run.output = std::move(runner.data);
    return run;
}

// ---------------------------------------------------------------------------------------------

Result<QImage> loadTransformInput(const QString &path, const LoadOptions &options)
{
    Result<QImage> image = loadImageRgb(path);
    if (!image || !options.applyExifOrientation)
        return image;
    const Result<ImageHeader> header = probeImage(path);
    if (!header || header->exifOrientation <= 1)
        return image;
    return pil::applyExifOrientation(image.value(), header->exifOrientation);
}

ImageTensor imageToTensor(const QImage &image)
{
    ImageTensor t;
    t.channels = channelsOf(image);
    t.height = image.height();
    t.width = image.width();
    t.data.resize(size_t(t.numel()));
    // ToTensor: img.float().div(255), exactly x / 255 in float32.
    float lut[256];
    for (int v = 0; v < 256; ++v)
        lut[v] = float(v) / 255.0f;
    const qsizetype plane = qsizetype(t.height) * t.width;
    for (int y = 0; y < t.height; ++y) {
        const uchar *src = image.constScanLine(y);
        for (int c = 0; c < t.channels; ++c) {
            float *dst = t.data.data() + c * plane + qsizetype(y) * t.width;
            for (int x = 0; x < t.width; ++x)
                dst[x] = lut[src[x * t.channels + c]];
        }
    }
    return t;
}

QImage tensorToImage(const ImageTensor &tensor, const std::vector<float> &mean,
                     const std::vector<float> &std)
{
    if (tensor.channels != 1 && tensor.channels != 3)
        return {};
    QImage out(tensor.width, tensor.height,
               tensor.channels == 1 ? QImage::Format_Grayscale8 : QImage::Format_RGB888);
    if (out.isNull())
        return {};
    const bool denormalize = !mean.empty() && !std.empty();
    for (int y = 0; y < tensor.height; ++y) {
        uchar *dst = out.scanLine(y);
        for (int c = 0; c < tensor.channels; ++c) {
            const float m
                = denormalize ? mean[mean.size() == 1 ? 0 : size_t(c) % mean.size()] : 0.0f;
            const float s = denormalize ? std[std.size() == 1 ? 0 : size_t(c) % std.size()] : 1.0f;
            const float *src = tensor.plane(c) + qsizetype(y) * tensor.width;
            for (int x = 0; x < tensor.width; ++x) {
                float v = src[x] * s + m;
                v = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 1.0f);
                dst[x * tensor.channels + c] = uchar(std::lround(v * 255.0f));
            }
        }
    }
    return out;
}

ChannelStats tensorStats(const ImageTensor &tensor)
{
    ChannelStats stats;
    const qsizetype n = qsizetype(tensor.height) * tensor.width;
    for (int c = 0; c < tensor.channels; ++c) {
        const float *p = tensor.plane(c);
        double sum = 0.0, sumSq = 0.0;
        double lo = n ? p[0] : 0.0, hi = lo;
        for (qsizetype i = 0; i < n; ++i) {
            const double v = p[i];
            sum += v;
            sumSq += v * v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const double mean = n ? sum / double(n) : 0.0;
        stats.mean.push_back(mean);
        stats.std.push_back(n ? std::sqrt(std::max(0.0, sumSq / double(n) - mean * mean)) : 0.0);
        stats.min.push_back(lo);
        stats.max.push_back(hi);
    }
    return stats;
}

} // namespace ifs
