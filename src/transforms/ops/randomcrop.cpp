// RandomCrop(size, padding=None, pad_if_needed=False, fill=0, padding_mode='constant').
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class RandomCrop final : public PreparedOp
{
public:
    std::vector<int> size; ///< [h, w]
    std::optional<std::array<int, 4>> padding; ///< left, top, right, bottom
    bool padIfNeeded = false;
    std::vector<double> fill{0.0};
    pil::PadMode padMode = pil::PadMode::Constant;

    void apply(RunState &run) const override
    {
        if (padding)
            run.pad(*padding, padMode, fill);
        if (padIfNeeded && run.size().width() < size[1]) {
            const int d = size[1] - run.size().width();
            run.pad({d, 0, d, 0}, padMode, fill); // torchvision pads both sides by the difference
        }
        if (padIfNeeded && run.size().height() < size[0]) {
            const int d = size[0] - run.size().height();
            run.pad({0, d, 0, d}, padMode, fill);
        }
        const int h = run.size().height(), w = run.size().width();
        const int th = size[0], tw = size[1];
        if (h < th || w < tw)
            fail(QStringLiteral("Required crop size (%1, %2) is larger than input image size "
                                "(%3, %4): add pad_if_needed=True or resize first")
                     .arg(th)
                     .arg(tw)
                     .arg(h)
                     .arg(w));
        // RandomCrop.get_params: two randints, unless the crop is the whole image.
        int i = 0, j = 0;
        if (!(w == tw && h == th)) {
            i = int(run.rng.randint(0, h - th + 1));
            j = int(run.rng.randint(0, w - tw + 1));
        }
        run.crop(i, j, th, tw);
        run.trace->summary = QStringLiteral("i=%1, j=%2, h=%3, w=%4").arg(i).arg(j).arg(th).arg(tw);
    }

    DataShape outputShape(const DataShape &input) const override
    {
        // The padded image in between is checked when it is made (RunState::pad).
        return withFixedSize(input, size);
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomCrop>();
    op->size = sizePair(a[u"size"], QStringLiteral("size"));
    if (a[u"padding"].kind != V::Kind::None)
        op->padding = paddingLtrb(a[u"padding"]);
    op->padIfNeeded = boolean(a[u"pad_if_needed"], QStringLiteral("pad_if_needed"));
    op->fill = fillValues(a[u"fill"]);
    op->padMode = padMode(a[u"padding_mode"]);
    return op;
}

void review(AdviceWalk &walk, int, const TransformStep &step)
{
    // No upscale note: a RandomCrop larger than the images pads (or fails), it never scales.
    if (const std::optional<QSize> crop = sizeArgument(stepArgument(step, QStringLiteral("size"))))
        walk.size = crop;
}

QList<TransformArgument> newStep(const DatasetHints &hints)
{
    return {positional(V::integer(hints.side())),
            {QStringLiteral("padding"), V::integer(std::max(1, hints.side() / 8))}};
}

} // namespace

const TransformDefinition &randomCrop()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomCrop"),
        .parameters = {req(QStringLiteral("size")), opt(QStringLiteral("padding"), V::none()),
                       opt(QStringLiteral("pad_if_needed"), V::boolean(false)),
                       opt(QStringLiteral("fill"), V::integer(0)), paddingModeParameter()},
        .description = QStringLiteral(
            "Cut a region of the given size at a random place, optionally padded first"),
        .category = TransformCategory::SizeAndCrop,
        .random = true,
        .input = StepInput::Any,
        .prepare = prepare,
        .review = review,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops
