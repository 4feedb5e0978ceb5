#include "transforms/transformadvice.h"

#include "base/version.h"
#include "image/imageprobe.h"
#include "transforms/transformop.h"

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

} // namespace

// ---- The advice kit (transformop.h) ---------------------------------------------------------

namespace ops {

V stepArgument(const TransformStep &step, const QString &name)
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

std::vector<double> numberList(const V &v)
{
    auto toDouble = [](const V &x) {
        return x.kind == V::Kind::Int ? double(x.intValue) : x.floatValue;
    };
    std::vector<double> out;
    if (isNumber(v))
        out.push_back(toDouble(v));
    else if (isSequence(v))
        for (const V &item : v.items)
            if (isNumber(item))
                out.push_back(toDouble(item));
    return out;
}

std::optional<QSize> sizeArgument(const V &v)
{
    const std::vector<double> values = numberList(v);
    if (values.size() == 1)
        return QSize(int(values[0]), int(values[0]));
    if (values.size() == 2)
        return QSize(int(values[1]), int(values[0]));
    return std::nullopt;
}

QString sizeText(QSize size)
{
    return QStringLiteral("%1×%2").arg(size.width()).arg(size.height());
}

PipelineAdvice *AdviceWalk::add(Severity severity, int step, const QString &message)
{
    advice.append({severity, step, message, std::nullopt, {}});
    return &advice.last();
}

void AdviceWalk::noteUpscale(int index, const QString &name, QSize target)
{
    if (!traits.typicalSize.isValid() || resized)
        return;
    const QSize t = size ? *size : traits.typicalSize;
    const double factor
        = std::max(double(target.width()) / t.width(), double(target.height()) / t.height());
    if (factor >= 3.0)
        add(Severity::Info, index,
            QStringLiteral("%1 makes %2 images %3 times larger: the network sees blurred pixels "
                           "and trains %4 times slower than at the images' own size. Consider a "
                           "size near %5.")
                .arg(name, sizeText(t))
                .arg(std::round(factor * 10) / 10)
                .arg(int(std::round(factor * factor)))
                .arg(std::min(t.width(), t.height())));
}

void AdviceWalk::requireTensor(int index, const QString &name)
{
    if (tensor)
        return;
    PipelineAdvice *a
        = add(Severity::Error, index,
              QStringLiteral("%1 works on tensors, but this step still receives a PIL image: "
                             "torchvision raises \"img should be Tensor Image\". Put ToTensor() "
                             "before it.")
                  .arg(name));
    // Move the (later) ToTensor here, or add one.
    TransformPipeline fixed = pipeline;
    qsizetype later = -1;
    for (qsizetype k = index + 1; k < pipeline.steps.size() && later < 0; ++k)
        if (pipeline.steps[k].name == u"ToTensor")
            later = k;
    if (later >= 0)
        fixed.steps.move(later, index);
    else
        fixed.steps.insert(index, step(QStringLiteral("ToTensor")));
    a->fix = fixed;
    a->fixLabel = QStringLiteral("Put ToTensor() before %1").arg(name);
}

} // namespace ops

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
    using S = PipelineAdvice::Severity;
    // Walk the pipeline with what is known statically: the size (when every image ends the same
    // size), the channels, and whether the data is a tensor yet. Each transform's review hook
    // adds its findings and updates what the walk knows.
    ops::AdviceWalk walk{pipeline, role, traits};
    if (traits.uniformSize && traits.typicalSize.isValid())
        walk.size = traits.typicalSize;
    const QList<TransformStep> &steps = pipeline.steps;
    for (int i = 0; i < steps.size(); ++i) {
        const TransformStep &s = steps[i];
        if (role == PipelineRole::Val && isRandomTransform(s.name)) {
            walk.add(S::Warning, i,
                     QStringLiteral("%1 is random: validation results will change from run to "
                                    "run and will not measure the same thing twice. Validation "
                                    "pipelines are usually deterministic (Resize + CenterCrop).")
                         .arg(s.name));
        }
        const TransformDefinition *definition = findDefinition(s.name);
        if (definition && !definition->unsupported.isEmpty())
            walk.add(
                S::Error, i,
                QStringLiteral("%1 cannot run here: %2.").arg(s.name, definition->unsupported));
        else if (definition && definition->review)
            definition->review(walk, i, s);
    }

    if (walk.toTensorStep < 0)
        walk.add(S::Warning, -1,
                 QStringLiteral("There is no ToTensor(): the pipeline returns PIL images, which "
                                "a DataLoader cannot batch. Add ToTensor() (and Normalize) at the "
                                "end."));
    else if (walk.normalizeStep < 0)
        walk.add(S::Info, -1,
                 QStringLiteral("There is no Normalize: inputs stay in [0, 1]. Networks usually "
                                "train better on normalised inputs; compute the dataset's mean "
                                "and std."));

    // Batches stack only tensors of one shape.
    const bool mixedSizes = !traits.uniformSize && traits.sampled > 0;
    if (!walk.size && (mixedSizes || walk.unequalSizes)) {
        if (walk.unequalSizes)
            walk.advice.append(*walk.unequalSizes);
        else
            walk.add(S::Warning, -1,
                     QStringLiteral("The images have different sizes and no step makes them "
                                    "equal, so a batch cannot be stacked: add Resize((h, w)) or a "
                                    "crop."));
    }
    return walk.advice;
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
    const QString trainSource = toTorchvisionSource(train);
    const QString valSource = toTorchvisionSource(val);
    // ConvertImageDtype(torch.float) and code kept as written may name torch.
    if (trainSource.contains(QStringLiteral("torch."))
        || valSource.contains(QStringLiteral("torch.")))
        out += QStringLiteral("import torch\n");
    out += QStringLiteral("from torchvision import transforms\n\n");
    out += QStringLiteral("train_transform = ") + trainSource + u'\n';
    out += QStringLiteral("\nval_transform = ") + valSource + u'\n';
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
