#include "transforms/transformadvice.h"

#include "base/version.h"
#include "image/imageprobe.h"

#include <QRegularExpression>
#include <QThread>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

namespace ifs {

namespace {

using V = TransformValue;

/// The value of a parameter of a step, by name: the argument given or the signature's default.
V argument(const TransformStep &step, const QString &name)
{
    const TransformSignature *signature = findTransform(step.name);
    if (!signature)
        return V::none();
    int positional = 0;
    for (const TransformArgument &arg : step.args) {
        if (!arg.keyword.isEmpty()) {
            if (arg.keyword == name)
                return arg.value;
            continue;
        }
        if (positional < signature->parameters.size()
            && signature->parameters[positional].name == name)
            return arg.value;
        ++positional;
    }
    for (const TransformParameter &param : signature->parameters)
        if (param.name == name)
            return param.defaultValue;
    return V::none();
}

bool isNumber(const V &v)
{
    return v.kind == V::Kind::Int || v.kind == V::Kind::Float;
}

double toDouble(const V &v)
{
    return v.kind == V::Kind::Int ? double(v.intValue) : v.floatValue;
}

std::vector<double> numberList(const V &v)
{
    std::vector<double> out;
    if (isNumber(v))
        out.push_back(toDouble(v));
    else if (v.kind == V::Kind::Tuple || v.kind == V::Kind::List)
        for (const V &item : v.items)
            if (isNumber(item))
                out.push_back(toDouble(item));
    return out;
}

/// (h, w) of a size argument given as an int or a one/two element sequence; nullopt otherwise.
std::optional<QSize> sizeArg(const V &v)
{
    const std::vector<double> values = numberList(v);
    if (values.size() == 1)
        return QSize(int(values[0]), int(values[0]));
    if (values.size() == 2)
        return QSize(int(values[1]), int(values[0]));
    return std::nullopt;
}

TransformStep step(const QString &name, QList<TransformArgument> args = {})
{
    return {name, std::move(args)};
}

TransformArgument pos(const V &value)
{
    return {QString(), value};
}

V floats(const std::vector<double> &values)
{
    QList<V> items;
    for (double x : values)
        items.append(V::real(std::round(x * 10000.0) / 10000.0));
    return V::tuple(items);
}

V sizeValue(int h, int w)
{
    return V::tuple({V::integer(h), V::integer(w)});
}

QString literal(const V &v)
{
    return toPythonLiteral(v);
}

bool isRandomName(const QString &name)
{
    return name.startsWith(u"Random") || name == u"ColorJitter" || name == u"GaussianBlur";
}

QString sizeText(QSize s)
{
    return QStringLiteral("%1×%2").arg(s.width()).arg(s.height());
}

} // namespace

DatasetTraits sampleDatasetTraits(const QStringList &paths, int count)
{
    DatasetTraits traits;
    if (paths.isEmpty() || count <= 0)
        return traits;
    const int n = std::min<int>(count, int(paths.size()));
    std::map<std::pair<int, int>, int> sizes;
    bool allGray = true;
    for (int k = 0; k < n; ++k) {
        // Evenly spread over the (class-ordered) list, so every class is seen.
        const qsizetype index = qsizetype((double(k) + 0.5) * double(paths.size()) / n);
        const Result<ImageHeader> header = probeImage(paths[std::min(index, paths.size() - 1)]);
        if (!header)
            continue;
        ++traits.sampled;
        ++sizes[{header->size.width(), header->size.height()}];
        if (header->mode != PixelMode::Gray && header->mode != PixelMode::Gray16)
            allGray = false;
    }
    if (traits.sampled == 0)
        return traits;
    const auto mostCommon
        = std::max_element(sizes.begin(), sizes.end(),
                           [](const auto &a, const auto &b) { return a.second < b.second; });
    traits.typicalSize = QSize(mostCommon->first.first, mostCommon->first.second);
    traits.uniformSize = sizes.size() == 1;
    traits.gray = allGray;
    return traits;
}

QList<PipelineAdvice> reviewPipeline(const TransformPipeline &pipeline, PipelineRole role,
                                     const DatasetTraits &traits)
{
    QList<PipelineAdvice> advice;
    auto add = [&advice](PipelineAdvice::Severity severity, int step, const QString &message) {
        advice.append({severity, step, message, std::nullopt, {}});
        return &advice.last();
    };
    using S = PipelineAdvice::Severity;

    // Walk the pipeline with what is known statically: the size (when every image ends the same
    // size), the channels, and whether the data is a tensor yet.
    std::optional<QSize> size;
    if (traits.uniformSize && traits.typicalSize.isValid())
        size = traits.typicalSize;
    int channels = 3; // torchvision's loader converts to RGB
    bool tensor = false;
    int toTensorStep = -1;
    int lastAspectResize = -1; // the last Resize(int), which keeps the aspect ratio
    int normalizeStep = -1;
    bool resized = false; // a Resize chose the size on purpose
    const QList<TransformStep> &steps = pipeline.steps;
    for (int i = 0; i < steps.size(); ++i) {
        const TransformStep &s = steps[i];
        const QString &n = s.name;
        if (role == PipelineRole::Val && isRandomName(n)) {
            add(S::Warning, i,
                QStringLiteral("%1 is random: validation results will change from run to run and "
                               "will not measure the same thing twice. Validation pipelines are "
                               "usually deterministic (Resize + CenterCrop).")
                    .arg(n));
        }
        if (n == u"Resize") {
            resized = true;
            const V sz = argument(s, QStringLiteral("size"));
            const std::vector<double> values = numberList(sz);
            if (values.size() == 2) {
                size = QSize(int(values[1]), int(values[0]));
            } else if (values.size() == 1) {
                lastAspectResize = i;
                if (size) {
                    const int shortSide = std::min(size->width(), size->height());
                    const int longSide = std::max(size->width(), size->height());
                    const int newShort = int(values[0]);
                    const int newLong = int(double(newShort) * longSide / shortSide);
                    size = size->width() <= size->height() ? QSize(newShort, newLong)
                                                           : QSize(newLong, newShort);
                }
            }
        } else if (n == u"CenterCrop" || n == u"RandomCrop" || n == u"RandomResizedCrop") {
            const std::optional<QSize> crop = sizeArg(argument(s, QStringLiteral("size")));
            if (crop && n != u"RandomCrop" && traits.typicalSize.isValid() && !resized) {
                const QSize t = size ? *size : traits.typicalSize;
                const double factor = std::max(double(crop->width()) / t.width(),
                                               double(crop->height()) / t.height());
                if (factor >= 3.0)
                    add(S::Info, i,
                        QStringLiteral("%1 makes %2 images %3 times larger: the network sees "
                                       "blurred pixels and trains %4 times slower than at the "
                                       "images' own size. Consider a size near %5.")
                            .arg(n, sizeText(t))
                            .arg(std::round(factor * 10) / 10)
                            .arg(int(std::round(factor * factor)))
                            .arg(std::min(t.width(), t.height())));
            }
            if (crop && n == u"CenterCrop" && size
                && (crop->width() > size->width() || crop->height() > size->height()))
                add(S::Warning, i,
                    QStringLiteral("CenterCrop(%1) is larger than the %2 image here: torchvision "
                                   "pads it with black borders.")
                        .arg(literal(argument(s, QStringLiteral("size"))), sizeText(*size)));
            if (n == u"RandomResizedCrop" || n == u"RandomErasing") {
                for (const QString &range : {QStringLiteral("scale"), QStringLiteral("ratio")}) {
                    const std::vector<double> r = numberList(argument(s, range));
                    if (r.size() == 2 && r[0] > r[1])
                        add(S::Warning, i,
                            QStringLiteral("%1's %2 is (%3, %4): it should be (min, max).")
                                .arg(n, range)
                                .arg(r[0])
                                .arg(r[1]));
                }
            }
            if (crop)
                size = crop;
        } else if (n == u"Pad") {
            if (size) {
                const std::vector<double> p = numberList(argument(s, QStringLiteral("padding")));
                if (p.size() == 1)
                    *size += QSize(int(2 * p[0]), int(2 * p[0]));
                else if (p.size() == 2)
                    *size += QSize(int(2 * p[0]), int(2 * p[1]));
                else if (p.size() == 4)
                    *size += QSize(int(p[0] + p[2]), int(p[1] + p[3]));
            }
        } else if (n == u"RandomRotation") {
            const V expand = argument(s, QStringLiteral("expand"));
            if (expand.kind == V::Kind::Bool && expand.boolValue)
                size.reset();
        } else if (n == u"Grayscale") {
            const V c = argument(s, QStringLiteral("num_output_channels"));
            channels = c.kind == V::Kind::Int ? int(c.intValue) : 1;
        } else if (n == u"ToTensor") {
            if (tensor)
                add(S::Error, i,
                    QStringLiteral("ToTensor appears twice: the second one receives a tensor and "
                                   "torchvision raises \"pic should be PIL Image or ndarray\". "
                                   "Remove it."));
            tensor = true;
            toTensorStep = i;
        } else if (n == u"Normalize" || n == u"RandomErasing") {
            if (!tensor) {
                PipelineAdvice *a = add(
                    S::Error, i,
                    QStringLiteral("%1 works on tensors, but this step still receives a PIL "
                                   "image: torchvision raises \"img should be Tensor Image\". Put "
                                   "ToTensor() before it.")
                        .arg(n));
                // Move the (later) ToTensor here, or add one.
                TransformPipeline fixed = pipeline;
                qsizetype later = -1;
                for (qsizetype k = i + 1; k < steps.size() && later < 0; ++k)
                    if (steps[k].name == u"ToTensor")
                        later = k;
                if (later >= 0)
                    fixed.steps.move(later, i);
                else
                    fixed.steps.insert(i, step(QStringLiteral("ToTensor")));
                a->fix = fixed;
                a->fixLabel = QStringLiteral("Put ToTensor() before %1").arg(n);
            }
            if (n == u"Normalize") {
                normalizeStep = i;
                const std::vector<double> mean = numberList(argument(s, QStringLiteral("mean")));
                const std::vector<double> std = numberList(argument(s, QStringLiteral("std")));
                for (const auto &[what, values] : {std::pair{QStringLiteral("mean"), mean},
                                                   std::pair{QStringLiteral("std"), std}})
                    if (values.size() != 1 && int(values.size()) != channels)
                        add(S::Error, i,
                            QStringLiteral("Normalize has %1 %2 value%3 for %4-channel images: "
                                           "give one value or %4.")
                                .arg(values.size())
                                .arg(what)
                                .arg(values.size() == 1 ? QString() : QStringLiteral("s"))
                                .arg(channels));
                auto varies = [](const std::vector<double> &v) {
                    return v.size() > 1 && std::any_of(v.begin(), v.end(), [&v](double x) {
                               return std::abs(x - v[0]) > 1e-6;
                           });
                };
                if (traits.gray && channels == 3 && (varies(mean) || varies(std)))
                    add(S::Warning, i,
                        QStringLiteral("This dataset is grayscale, so the three channels are "
                                       "equal, but Normalize uses different statistics per "
                                       "channel (ImageNet's?): the channels end up different for "
                                       "no reason. Compute the dataset's own mean and std, or "
                                       "use one value each."));
            }
        }
    }

    if (toTensorStep < 0)
        add(S::Warning, -1,
            QStringLiteral("There is no ToTensor(): the pipeline returns PIL images, which a "
                           "DataLoader cannot batch. Add ToTensor() (and Normalize) at the end."));
    else if (normalizeStep < 0)
        add(S::Info, -1,
            QStringLiteral("There is no Normalize: inputs stay in [0, 1]. Networks usually train "
                           "better on normalised inputs; compute the dataset's mean and std."));

    // Batches stack only tensors of one shape.
    const bool mixedSizes = !traits.uniformSize && traits.sampled > 0;
    if (!size && (mixedSizes || lastAspectResize >= 0)) {
        if (lastAspectResize >= 0) {
            const TransformStep &s = steps[lastAspectResize];
            const V sz = argument(s, QStringLiteral("size"));
            const std::vector<double> sides = numberList(sz);
            const int side = sides.empty() ? 224 : int(sides[0]);
            PipelineAdvice *a = add(
                S::Warning, lastAspectResize,
                QStringLiteral("Resize(%1) keeps the aspect ratio, so images of different shapes "
                               "give tensors of different sizes and a batch cannot be stacked "
                               "(\"stack expects each tensor to be equal size\"): use "
                               "Resize((%1, %1)) or add a crop such as CenterCrop(%1).")
                    .arg(side));
            TransformPipeline fixed = pipeline;
            fixed.steps[lastAspectResize].args[0].value = sizeValue(side, side);
            if (fixed.steps[lastAspectResize].args[0].keyword.isEmpty()
                || fixed.steps[lastAspectResize].args[0].keyword == u"size")
                a->fix = fixed;
            a->fixLabel = QStringLiteral("Use Resize((%1, %1))").arg(side);
        } else {
            add(S::Warning, -1,
                QStringLiteral("The images have different sizes and no step makes them equal, so "
                               "a batch cannot be stacked: add Resize((h, w)) or a crop."));
        }
    }
    return advice;
}

PipelinePair defaultPipelines(const DatasetTraits &traits)
{
    PipelinePair pair;
    const QSize t = traits.typicalSize;
    const bool small = t.isValid() && std::max(t.width(), t.height()) <= 64;
    if (small) {
        const int side = std::min(t.width(), t.height());
        const V mean = traits.gray ? floats({0.5}) : floats({0.5, 0.5, 0.5});
        const V std = mean;
        QList<TransformStep> common;
        if (!traits.uniformSize || t.width() != t.height())
            common.append(step(QStringLiteral("Resize"), {pos(sizeValue(side, side))}));
        // No padded RandomCrop: it regularises more than short runs can use (on Fashion-MNIST,
        // five epochs end 2 points lower with RandomCrop(28, padding=3); see the README).
        pair.train.steps = common;
        pair.train.steps.append(step(QStringLiteral("RandomHorizontalFlip")));
        pair.train.steps.append(step(QStringLiteral("ToTensor")));
        pair.train.steps.append(step(QStringLiteral("Normalize"), {pos(mean), pos(std)}));
        pair.val.steps = common;
        pair.val.steps.append(step(QStringLiteral("ToTensor")));
        pair.val.steps.append(step(QStringLiteral("Normalize"), {pos(mean), pos(std)}));
    } else {
        const V mean = floats({0.485, 0.456, 0.406});
        const V std = floats({0.229, 0.224, 0.225});
        pair.train.steps = {
            step(QStringLiteral("RandomResizedCrop"), {pos(V::integer(224))}),
            step(QStringLiteral("RandomHorizontalFlip")),
            step(QStringLiteral("ToTensor")),
            step(QStringLiteral("Normalize"), {pos(mean), pos(std)}),
        };
        pair.val.steps = {
            step(QStringLiteral("Resize"), {pos(V::integer(256))}),
            step(QStringLiteral("CenterCrop"), {pos(V::integer(224))}),
            step(QStringLiteral("ToTensor")),
            step(QStringLiteral("Normalize"), {pos(mean), pos(std)}),
        };
    }
    return pair;
}

TransformPipeline withNormalize(const TransformPipeline &pipeline, const std::vector<double> &mean,
                                const std::vector<double> &std)
{
    TransformPipeline out = pipeline;
    const TransformStep normalize
        = step(QStringLiteral("Normalize"), {pos(floats(mean)), pos(floats(std))});
    for (TransformStep &s : out.steps)
        if (s.name == u"Normalize") {
            s = normalize;
            return out;
        }
    const bool hasToTensor
        = std::any_of(out.steps.begin(), out.steps.end(),
                      [](const TransformStep &s) { return s.name == u"ToTensor"; });
    if (!hasToTensor)
        out.steps.append(step(QStringLiteral("ToTensor")));
    // After ToTensor and before RandomErasing, if any (erasing's zeros mean "mean colour" then).
    qsizetype at = out.steps.size();
    for (qsizetype i = 0; i < out.steps.size(); ++i)
        if (out.steps[i].name == u"RandomErasing") {
            at = i;
            break;
        }
    out.steps.insert(at, normalize);
    return out;
}

Result<DatasetChannelStats> computeDatasetStats(const QStringList &paths, int maxImages,
                                                uint64_t seed, int threads,
                                                const std::atomic_bool *cancel,
                                                const std::function<void(int, int)> &progress)
{
    if (paths.isEmpty())
        return Error{QStringLiteral("The dataset has no images to compute statistics from")};
    // A seeded sample without replacement.
    std::vector<qsizetype> order(size_t(paths.size()));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 engine(seed);
    const int total = std::min<int>(std::max(1, maxImages), int(paths.size()));
    for (int i = 0; i < total; ++i) {
        std::uniform_int_distribution<qsizetype> pick(i, paths.size() - 1);
        std::swap(order[size_t(i)], order[size_t(pick(engine))]);
    }

    struct Partial
    {
        double sum[3] = {0, 0, 0};
        double sumSq[3] = {0, 0, 0};
        int64_t pixels = 0;
        int images = 0;
        int failed = 0;
    };
    std::atomic_int next{0};
    std::atomic_int done{0};
    std::mutex mutex;
    Partial all;
    auto work = [&]() {
        Partial local;
        for (;;) {
            if (cancel && cancel->load())
                break;
            const int k = next.fetch_add(1);
            if (k >= total)
                break;
            const Result<QImage> image = loadImageRgb(paths[order[size_t(k)]]);
            if (!image) {
                ++local.failed;
            } else {
                const QImage &img = image.value();
                // Exact integer sums per row, then doubles: no rounding drift on big datasets.
                for (int y = 0; y < img.height(); ++y) {
                    const uchar *p = img.constScanLine(y);
                    uint64_t s[3] = {0, 0, 0}, q[3] = {0, 0, 0};
                    for (int x = 0; x < img.width(); ++x)
                        for (int c = 0; c < 3; ++c) {
                            const uint64_t v = p[3 * x + c];
                            s[c] += v;
                            q[c] += v * v;
                        }
                    for (int c = 0; c < 3; ++c) {
                        local.sum[c] += double(s[c]);
                        local.sumSq[c] += double(q[c]);
                    }
                }
                local.pixels += int64_t(img.width()) * img.height();
                ++local.images;
            }
            const int finished = done.fetch_add(1) + 1;
            if (progress)
                progress(finished, total);
        }
        const std::lock_guard lock(mutex);
        for (int c = 0; c < 3; ++c) {
            all.sum[c] += local.sum[c];
            all.sumSq[c] += local.sumSq[c];
        }
        all.pixels += local.pixels;
        all.images += local.images;
        all.failed += local.failed;
    };
    int n = threads > 0 ? threads : std::max(1, QThread::idealThreadCount());
    n = std::min(n, total);
    std::vector<std::thread> pool;
    for (int i = 1; i < n; ++i)
        pool.emplace_back(work);
    work();
    for (std::thread &t : pool)
        t.join();

    DatasetChannelStats stats;
    stats.images = all.images;
    stats.failed = all.failed;
    stats.cancelled = cancel && cancel->load();
    if (stats.cancelled)
        return stats;
    if (all.pixels == 0)
        return Error{QStringLiteral("None of the %1 sampled images could be read").arg(total)};
    for (int c = 0; c < 3; ++c) {
        const double mean = all.sum[c] / double(all.pixels) / 255.0;
        const double meanSq = all.sumSq[c] / double(all.pixels) / (255.0 * 255.0);
        stats.mean.push_back(mean);
        stats.std.push_back(std::sqrt(std::max(0.0, meanSq - mean * mean)));
    }
    return stats;
}

QString pipelinesToPython(const TransformPipeline &train, const TransformPipeline &val,
                          const QString &datasetName)
{
    QString out = QStringLiteral("# Transforms");
    if (!datasetName.isEmpty())
        out += QStringLiteral(" for the dataset “%1”").arg(datasetName);
    out += QStringLiteral(", written by ImageFolder Studio %1 (torchvision 0.14 semantics).\n")
               .arg(QStringLiteral(IFS_VERSION));
    out += QStringLiteral("from torchvision import transforms\n\n");
    out += QStringLiteral("train_transform = ") + toTorchvisionSource(train) + u'\n';
    out += QStringLiteral("\nval_transform = ") + toTorchvisionSource(val) + u'\n';
    return out;
}

Result<QList<NamedPipeline>> pipelinesFromPython(const QString &source)
{
    QList<NamedPipeline> found;
    static const QRegularExpression assignment(
        QStringLiteral("^([A-Za-z_][A-Za-z0-9_]*)\\s*=(?!=)\\s*"),
        QRegularExpression::MultilineOption);
    QRegularExpressionMatchIterator it = assignment.globalMatch(source);
    while (it.hasNext()) {
        const QRegularExpressionMatch match = it.next();
        // The expression runs to the first newline outside brackets and strings.
        const qsizetype start = match.capturedEnd();
        qsizetype end = start;
        int depth = 0;
        QChar quote;
        for (; end < source.size(); ++end) {
            const QChar c = source[end];
            if (!quote.isNull()) {
                if (c == u'\\')
                    ++end;
                else if (c == quote)
                    quote = QChar();
                continue;
            }
            if (c == u'\'' || c == u'"')
                quote = c;
            else if (c == u'#')
                while (end + 1 < source.size() && source[end + 1] != u'\n')
                    ++end;
            else if (c == u'(' || c == u'[' || c == u'{')
                ++depth;
            else if (c == u')' || c == u']' || c == u'}')
                --depth;
            else if (c == u'\n' && depth <= 0)
                break;
        }
        const QString expression = source.mid(start, end - start);
        const int line = int(source.left(match.capturedStart()).count(u'\n')) + 1;
        Result<TransformPipeline> pipeline = parseTransforms(expression);
        if (pipeline) {
            found.append({match.captured(1), line, std::move(pipeline).value(), expression});
        } else if (expression.contains(QStringLiteral("Compose"))) {
            return Error{QStringLiteral("“%1” (line %2) is not a pipeline ImageFolder Studio can "
                                        "read: %3")
                             .arg(match.captured(1))
                             .arg(line)
                             .arg(pipeline.errorMessage())};
        }
    }
    if (found.isEmpty())
        return Error{QStringLiteral("No transform pipeline found: expected assignments such as "
                                    "“train_transform = transforms.Compose([...])”")};
    return found;
}

} // namespace ifs
