#include "transforms/transformop.h"

#include "base/memorybudget.h"
#include "transforms/torchrng.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace ifs::ops {

namespace {

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

} // namespace

void fail(const QString &message)
{
    throw StepError{message};
}

// ---- Signatures -----------------------------------------------------------------------------

TransformParameter req(const QString &name, const ParameterHint &hint)
{
    return {name, true, V::none(), hint};
}

TransformParameter opt(const QString &name, const V &defaultValue, const ParameterHint &hint)
{
    return {name, false, defaultValue, hint};
}

ParameterHint integerHint(int minimum, int maximum)
{
    ParameterHint hint;
    hint.editor = ParameterHint::Editor::Integer;
    hint.minimum = minimum;
    hint.maximum = maximum;
    return hint;
}

ParameterHint choiceHint(const QStringList &choices)
{
    ParameterHint hint;
    hint.editor = ParameterHint::Editor::Choice;
    hint.choices = choices;
    return hint;
}

TransformParameter paddingModeParameter()
{
    return opt(QStringLiteral("padding_mode"), V::string(QStringLiteral("constant")),
               choiceHint({QStringLiteral("constant"), QStringLiteral("edge"),
                           QStringLiteral("reflect"), QStringLiteral("symmetric")}));
}

TransformParameter antialiasParameter()
{
    ParameterHint hint;
    hint.editor = ParameterHint::Editor::OptionalBool;
    return opt(QStringLiteral("antialias"), V::none(), hint);
}

V floatPair(double a, double b)
{
    return V::tuple({V::real(a), V::real(b)});
}

V floatTuple(std::initializer_list<double> values)
{
    QList<V> items;
    for (double v : values)
        items.append(V::real(v));
    return V::tuple(items);
}

TransformArgument positional(const V &value)
{
    return {QString(), value};
}

// ---- Arguments ------------------------------------------------------------------------------

OpArguments::OpArguments(const TransformDefinition &definition, const TransformStep &bound)
{
    // Every parameter by name, defaults filled in.
    for (const TransformParameter &param : definition.parameters)
        m_values.append({param.name, param.required ? V::none() : param.defaultValue});
    qsizetype positional = 0;
    for (const TransformArgument &arg : bound.args) {
        QString name = arg.keyword;
        if (name.isEmpty() && positional < definition.parameters.size())
            name = definition.parameters[positional++].name;
        for (auto &[key, value] : m_values)
            if (key == name)
                value = arg.value;
    }
}

const V &OpArguments::operator[](QStringView name) const
{
    static const V none;
    for (const auto &[key, value] : m_values)
        if (key == name)
            return value;
    return none;
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

DataShape withFixedSize(const DataShape &input, const std::vector<int> &size)
{
    DataShape out = input;
    out.height = size[0];
    out.width = size[1];
    out.exact = true;
    return out;
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

double probability(const V &v)
{
    const double p = number(v, QStringLiteral("p"));
    if (p < 0.0 || p > 1.0)
        fail(QStringLiteral("p must be between 0 and 1, not %1").arg(toPythonLiteral(v)));
    return p;
}

// ---- Running --------------------------------------------------------------------------------

void CoordMap::crop(double left, double top)
{
    x.offset += x.scale * left;
    y.offset += y.scale * top;
}

void CoordMap::resize(QSize from, QSize to)
{
    x.scale *= double(from.width()) / to.width();
    y.scale *= double(from.height()) / to.height();
}

void CoordMap::flipX(int width)
{
    x.offset += x.scale * width;
    x.scale = -x.scale;
}

void CoordMap::flipY(int height)
{
    y.offset += y.scale * height;
    y.scale = -y.scale;
}

QRectF CoordMap::region(double left, double top, double w, double h) const
{
    if (!valid)
        return {};
    const double x0 = x.map(left), x1 = x.map(left + w);
    const double y0 = y.map(top), y1 = y.map(top + h);
    return QRectF(QPointF(std::min(x0, x1), std::min(y0, y1)),
                  QPointF(std::max(x0, x1), std::max(y0, y1)));
}

void RunState::requireImage() const
{
    if (data.isTensor())
        fail(QStringLiteral("works on PIL images here, and this step comes after ToTensor: "
                            "move it before ToTensor (torchvision's tensor version resamples "
                            "differently)"));
}

void RunState::requireTensor() const
{
    if (!data.isTensor())
        fail(QStringLiteral("needs a tensor, and the image is still a PIL image: put "
                            "ToTensor() before it (torchvision raises \"img should be Tensor "
                            "Image\")"));
}

void RunState::checkMemory(const DataShape &output) const
{
    const qint64 bytes = output.bytes();
    if (bytes > 0 && (bytes > memoryBound || keptBytes > memoryBound - bytes))
        throw StepError{memoryRefusal(output, keptBytes, memoryBound), ErrorCode::OutOfMemory};
}

void RunState::setRegion(double left, double top, double w, double h)
{
    trace->regionInInput = coords.region(left, top, w, h);
}

void RunState::crop(int top, int left, int h, int w)
{
    checkMemory({data.channels(), w, h, data.isTensor()});
    setRegion(left, top, w, h);
    if (data.isTensor())
        data.tensor = tensorCrop(data.tensor, top, left, h, w);
    else
        data.image = pil::crop(data.image, QRect(left, top, w, h));
    coords.crop(left, top);
}

void RunState::resizeTo(int h, int w, pil::Filter filter)
{
    const QSize from = size();
    const QSize to(w, h);
    if (from == to)
        return; // F.resize returns the image as it is
    checkMemory({data.channels(), w, h, false});
    data.image = pil::resize(data.image, to, filter);
    coords.resize(from, to);
}

void RunState::pad(const std::array<int, 4> &ltrb, pil::PadMode mode,
                   const std::vector<double> &fill)
{
    const QSize in = size();
    checkMemory({data.channels(), qint64(in.width()) + ltrb[0] + ltrb[2],
                 qint64(in.height()) + ltrb[1] + ltrb[3], data.isTensor()});
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

PythonRandom &RunState::python()
{
    if (!pythonRandom)
        pythonRandom = std::make_shared<PythonRandom>(rng.initialSeed());
    return *pythonRandom;
}

bool RunState::coin(double p)
{
    return float(rng.rand()) < float(p);
}

QString memoryRefusal(const DataShape &output, qint64 keptBytes, qint64 bound)
{
    QString message = QStringLiteral("its output, %1, would take %2, more than the %3 one run "
                                     "may use here")
                          .arg(output.describe(), formatBytes(output.bytes()), formatBytes(bound));
    if (keptBytes > 0)
        message += QStringLiteral(" with the %1 that the earlier steps' outputs keep")
                       .arg(formatBytes(keptBytes));
    return message + QStringLiteral(": use a smaller size");
}

int pyRound(double x)
{
    return int(std::nearbyint(x)); // the default rounding mode is to nearest, ties to even
}

QString fmt(double x)
{
    return QString::number(x, 'g', 4);
}

int channelsOf(const QImage &image)
{
    return image.format() == QImage::Format_Grayscale8 ? 1 : 3;
}

pil::Fill pilFill(const std::vector<double> &fill, int channels)
{
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

void convertToGray(RunState &run, int outChannels)
{
    const QSize size = run.size();
    run.checkMemory({outChannels, size.width(), size.height(), run.data.isTensor()});
    if (run.data.isTensor()) {
        run.data.tensor = tensorGray(run.data.tensor, outChannels);
    } else {
        QImage gray = pil::toGray(run.data.image);
        run.data.image = outChannels == 3 ? pil::toRgb(gray) : gray;
    }
}

void PreparedStep::apply(RunState &run) const
{
    if (run.data.crops > 0 && definition->unsupported.isEmpty())
        fail(QStringLiteral("receives the tuple of %1 crops a FiveCrop/TenCrop made, and "
                            "torchvision's transforms take one image: stack them with "
                            "Lambda(lambda crops: torch.stack([ToTensor()(c) for c in crops])) "
                            "in Python (the preview shows the crops side by side)")
                 .arg(run.data.crops));
    if (definition->input == StepInput::Image)
        run.requireImage();
    else if (definition->input == StepInput::Tensor)
        run.requireTensor();
    op->apply(run);
}

PreparedStep prepareStep(const TransformStep &bound)
{
    const TransformDefinition *definition = findDefinition(bound.name);
    if (!definition)
        fail(QStringLiteral("is not supported by the engine"));
    return {definition, definition->prepare(OpArguments(*definition, bound))};
}

namespace {

/// A Compose([...]) inside a container: its steps in order.
class NestedCompose final : public PreparedOp
{
public:
    std::vector<PreparedStep> steps;

    void apply(RunState &run) const override
    {
        std::vector<const PreparedStep *> order;
        for (const PreparedStep &step : steps)
            order.push_back(&step);
        run.trace->summary = applyNested(run, order);
    }

    DataShape outputShape(const DataShape &input) const override
    {
        DataShape shape = input;
        for (const PreparedStep &step : steps)
            shape = step.op->outputShape(shape);
        return shape;
    }
};

std::unique_ptr<PreparedOp> prepareCompose(const OpArguments &)
{
    fail(QStringLiteral("Compose is prepared by its container"));
}

const TransformDefinition &nestedComposeDefinition()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("Compose"),
        .parameters = {req(QStringLiteral("transforms"))},
        .description = QStringLiteral("Run transforms one after the other"),
        .category = TransformCategory::Combine,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepareCompose,
    };
    return definition;
}

} // namespace

std::vector<PreparedStep> prepareNested(const V &transforms)
{
    if (transforms.kind != V::Kind::List && transforms.kind != V::Kind::Tuple)
        fail(QStringLiteral("transforms must be a list of transforms, not %1")
                 .arg(toPythonLiteral(transforms)));
    std::vector<PreparedStep> steps;
    for (qsizetype i = 0; i < transforms.items.size(); ++i) {
        const V &item = transforms.items[i];
        if (item.kind != V::Kind::Call)
            fail(QStringLiteral("transforms[%1] must be a transform, not %2")
                     .arg(i)
                     .arg(toPythonLiteral(item)));
        try {
            if (item.text == u"Compose") {
                auto compose = std::make_shared<NestedCompose>();
                compose->steps = prepareNested(item.items.value(0));
                steps.push_back({&nestedComposeDefinition(), std::move(compose)});
                continue;
            }
            Result<TransformStep> bound = normalizeStep(item.toStep());
            if (!bound)
                fail(bound.errorMessage());
            if (const TransformDefinition *d = findDefinition(item.text);
                d && !d->unsupported.isEmpty())
                fail(d->unsupported);
            steps.push_back(prepareStep(bound.value()));
        } catch (const StepError &e) {
            throw StepError{
                QStringLiteral("transforms[%1], %2: %3").arg(i).arg(item.text, e.message), e.code};
        }
    }
    return steps;
}

QString applyNested(RunState &run, const std::vector<const PreparedStep *> &steps)
{
    StepTrace *outer = run.trace;
    QStringList done;
    for (const PreparedStep *step : steps) {
        StepTrace inner;
        inner.name = step->definition->name;
        inner.inputSize = run.size();
        run.trace = &inner;
        try {
            step->apply(run);
        } catch (const StepError &e) {
            run.trace = outer;
            throw StepError{QStringLiteral("%1: %2").arg(inner.name, e.message), e.code};
        }
        run.trace = outer;
        if (!inner.regionInInput.isEmpty())
            outer->regionInInput = inner.regionInInput;
        done.append(inner.summary.isEmpty()
                        ? inner.name
                        : QStringLiteral("%1(%2)").arg(inner.name, inner.summary));
    }
    return done.join(QStringLiteral(", "));
}

DataShape nestedOutputShape(const DataShape &input,
                            const std::vector<std::vector<const PreparedStep *>> &possibilities)
{
    std::optional<DataShape> result;
    bool same = true;
    for (const std::vector<const PreparedStep *> &steps : possibilities) {
        DataShape shape = input;
        for (const PreparedStep *step : steps)
            shape = step->op->outputShape(shape);
        if (!result) {
            result = shape;
            continue;
        }
        same = same && shape.channels == result->channels && shape.width == result->width
            && shape.height == result->height && shape.tensor == result->tensor && shape.exact
            && result->exact;
        if (!shape.sizeKnown() || !result->sizeKnown()) {
            result->width = result->height = -1;
        } else {
            result->width = std::max(result->width, shape.width);
            result->height = std::max(result->height, shape.height);
        }
        result->channels = std::max(result->channels, shape.channels);
        result->tensor = result->tensor || shape.tensor;
    }
    if (!result)
        return input;
    if (!same)
        result->exact = false;
    return *result;
}

namespace {

void reviewCalls(AdviceWalk &walk, int index, const V &transforms)
{
    for (const V &item : transforms.items) {
        if (item.kind != V::Kind::Call)
            continue;
        if (item.text == u"Compose") {
            reviewCalls(walk, index, item.items.value(0));
            continue;
        }
        const TransformStep nested = item.toStep();
        if (const TransformDefinition *definition = findDefinition(nested.name);
            definition && definition->review)
            definition->review(walk, index, nested);
    }
}

} // namespace

void reviewNested(AdviceWalk &walk, int index, const TransformStep &step)
{
    AdviceWalk inner = walk;
    inner.advice.clear();
    reviewCalls(inner, index, stepArgument(step, QStringLiteral("transforms")));
    walk.advice.append(inner.advice);
    walk.channels = inner.channels;
    walk.tensor = inner.tensor;
    walk.resized = walk.resized || inner.resized;
    walk.toTensorStep = inner.toTensorStep;
    walk.normalizeStep = inner.normalizeStep;
    if (inner.unequalSizes)
        walk.unequalSizes = inner.unequalSizes;
    if (inner.size != walk.size) {
        // The nested steps may or may not run, or run in another order: the size varies.
        walk.size.reset();
        PipelineAdvice varies;
        varies.severity = PipelineAdvice::Severity::Warning;
        varies.step = index;
        varies.message = QStringLiteral("%1 changes the size only when its transforms run, so "
                                        "images leave it in different sizes and a batch cannot "
                                        "be stacked: add a crop or Resize((h, w)) after it.")
                             .arg(step.name);
        walk.unequalSizes = varies;
    }
}

void CoinImageOp::apply(RunState &run) const
{
    // `.item() < self.p`: the float32 draw widened to a Python float, compared in double.
    run.trace->applied = run.rng.rand() < p;
    if (!run.trace->applied) {
        run.trace->summary = QStringLiteral("not applied");
        return;
    }
    if (!refusal.isEmpty())
        fail(refusal);
    run.data.image = function(run.data.image, argument);
    run.trace->summary = done.contains(u"%1") ? done.arg(fmt(argument)) : done;
}

std::array<double, 6> inverseAffineMatrix(QPointF center, double angle, int tx, int ty,
                                          double scale, double shearX, double shearY)
{
    constexpr double kDegree = M_PI / 180.0; // math.radians
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
    return m;
}

} // namespace ifs::ops
