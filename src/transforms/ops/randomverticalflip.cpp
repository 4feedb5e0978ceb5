// RandomVerticalFlip(p=0.5): mirror top–bottom.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

#include <algorithm>

namespace ifs::ops {

namespace {

void tensorFlipY(ImageTensor &t)
{
    for (int c = 0; c < t.channels; ++c)
        for (int y = 0; y < t.height / 2; ++y)
            std::swap_ranges(t.plane(c) + qsizetype(y) * t.width,
                             t.plane(c) + qsizetype(y + 1) * t.width,
                             t.plane(c) + qsizetype(t.height - 1 - y) * t.width);
}

class RandomVerticalFlip final : public PreparedOp
{
public:
    double p = 0.5;

    void apply(RunState &run) const override
    {
        run.trace->applied = run.coin(p);
        if (run.trace->applied) {
            if (run.data.isTensor())
                tensorFlipY(run.data.tensor);
            else
                run.data.image = pil::flipTopBottom(run.data.image);
            run.coords.flipY(run.size().height());
        }
        run.trace->summary
            = run.trace->applied ? QStringLiteral("flipped") : QStringLiteral("not flipped");
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomVerticalFlip>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    return op;
}

} // namespace

const TransformDefinition &randomVerticalFlip()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomVerticalFlip"),
        .parameters = {opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Mirror top–bottom with probability p"),
        .category = TransformCategory::FlipAndGeometry,
        .random = true,
        .input = StepInput::Any,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops
