// RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3/4, 4/3), interpolation=BILINEAR,
// antialias=None): ImageNet's augmentation, and the batch loader's fused path.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

#include <cmath>

namespace ifs {

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
        const int w = ops::pyRound(std::sqrt(targetArea * aspect));
        const int h = ops::pyRound(std::sqrt(targetArea / aspect));
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
        h = ops::pyRound(w / minRatio);
    else if (inRatio > maxRatio)
        w = ops::pyRound(h * maxRatio);
    return {(height - h) / 2, (width - w) / 2, h, w, true};
}

namespace ops {

namespace {

class RandomResizedCrop final : public PreparedOp
{
public:
    std::vector<int> size; ///< [h, w]
    Range scale;
    Range ratio;
    pil::Filter filter = pil::Filter::Bilinear;

    void apply(RunState &run) const override
    {
        const CropBox box = sampleResizedCrop(run.size().width(), run.size().height(), scale.lo,
                                              scale.hi, ratio.lo, ratio.hi, run.rng);
        run.crop(box.top, box.left, box.height, box.width);
        run.resizeTo(size[0], size[1], filter);
        run.trace->summary
            = QStringLiteral("i=%1, j=%2, h=%3, w=%4%5 → %6 × %7")
                  .arg(box.top)
                  .arg(box.left)
                  .arg(box.height)
                  .arg(box.width)
                  .arg(box.fallback ? QStringLiteral(" (central fallback)") : QString())
                  .arg(size[1])
                  .arg(size[0]);
    }

    FusedPart fusedPart() const override
    {
        return fused::ResizedCrop{size[0], size[1], scale, ratio, filter};
    }

    DataShape outputShape(const DataShape &input) const override
    {
        return withFixedSize(input, size);
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomResizedCrop>();
    op->size = sizePair(a[u"size"], QStringLiteral("size"));
    op->scale = pair(a[u"scale"], QStringLiteral("scale"));
    op->ratio = pair(a[u"ratio"], QStringLiteral("ratio"));
    if (op->ratio.lo <= 0 || op->ratio.hi <= 0)
        fail(QStringLiteral("ratio values must be positive (their logarithms are taken)"));
    op->filter = interpolation(a[u"interpolation"]);
    return op;
}

void review(AdviceWalk &walk, int index, const TransformStep &step)
{
    const std::optional<QSize> crop = sizeArgument(stepArgument(step, QStringLiteral("size")));
    if (!crop)
        return;
    walk.noteUpscale(index, step.name, *crop);
    for (const QString &range : {QStringLiteral("scale"), QStringLiteral("ratio")}) {
        const std::vector<double> r = numberList(stepArgument(step, range));
        if (r.size() == 2 && r[0] > r[1])
            walk.add(AdviceWalk::Severity::Warning, index,
                     QStringLiteral("%1's %2 is (%3, %4): it should be (min, max).")
                         .arg(step.name, range)
                         .arg(r[0])
                         .arg(r[1]));
    }
    walk.size = crop;
}

QList<TransformArgument> newStep(const DatasetHints &hints)
{
    return {positional(V::integer(hints.side()))};
}

} // namespace

const TransformDefinition &randomResizedCrop()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomResizedCrop"),
        .parameters
        = {req(QStringLiteral("size")), opt(QStringLiteral("scale"), floatPair(0.08, 1.0)),
           opt(QStringLiteral("ratio"), floatPair(3.0 / 4.0, 4.0 / 3.0)),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("BILINEAR"))),
           antialiasParameter()},
        .description = QStringLiteral(
            "Cut a random area and aspect ratio, then resize it: ImageNet's augmentation"),
        .category = TransformCategory::SizeAndCrop,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .review = review,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ops
} // namespace ifs
