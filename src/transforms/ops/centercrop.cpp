// CenterCrop(size): the central region, padded with zeros where the image is smaller.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class CenterCrop final : public PreparedOp
{
public:
    std::vector<int> size; ///< [h, w]

    void apply(RunState &run) const override
    {
        int imageH = run.size().height(), imageW = run.size().width();
        const int cropH = size[0], cropW = size[1];
        if (cropW > imageW || cropH > imageH) {
            const std::array<int, 4> ltrb{
                cropW > imageW ? (cropW - imageW) / 2 : 0,
                cropH > imageH ? (cropH - imageH) / 2 : 0,
                cropW > imageW ? (cropW - imageW + 1) / 2 : 0,
                cropH > imageH ? (cropH - imageH + 1) / 2 : 0,
            };
            run.pad(ltrb, pil::PadMode::Constant, {0.0});
            imageH = run.size().height();
            imageW = run.size().width();
            run.trace->summary = QStringLiteral("padded to %1 × %2").arg(imageW).arg(imageH);
            if (cropW == imageW && cropH == imageH) {
                run.setRegion(0, 0, imageW, imageH);
                return;
            }
        }
        const int top = pyRound((imageH - cropH) / 2.0);
        const int left = pyRound((imageW - cropW) / 2.0);
        run.crop(top, left, cropH, cropW);
        run.trace->summary
            = QStringLiteral("i=%1, j=%2, h=%3, w=%4").arg(top).arg(left).arg(cropH).arg(cropW);
    }

    DataShape outputShape(const DataShape &input) const override
    {
        return withFixedSize(input, size);
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<CenterCrop>();
    op->size = sizePair(a[u"size"], QStringLiteral("size"));
    return op;
}

void review(AdviceWalk &walk, int index, const TransformStep &step)
{
    const V size = stepArgument(step, QStringLiteral("size"));
    const std::optional<QSize> crop = sizeArgument(size);
    if (!crop)
        return;
    walk.noteUpscale(index, step.name, *crop);
    if (walk.size && (crop->width() > walk.size->width() || crop->height() > walk.size->height()))
        walk.add(AdviceWalk::Severity::Warning, index,
                 QStringLiteral("CenterCrop(%1) is larger than the %2 image here: torchvision "
                                "pads it with black borders.")
                     .arg(toPythonLiteral(size), sizeText(*walk.size)));
    walk.size = crop;
}

QList<TransformArgument> newStep(const DatasetHints &hints)
{
    return {positional(V::integer(hints.side()))};
}

} // namespace

const TransformDefinition &centerCrop()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("CenterCrop"),
        .parameters = {req(QStringLiteral("size"))},
        .description = QStringLiteral("Cut the central region of the given size"),
        .category = TransformCategory::SizeAndCrop,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .review = review,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops
