// RandomHorizontalFlip(p=0.5): mirror left–right.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

#include <algorithm>

namespace ifs::ops {

namespace {

void tensorFlipX(ImageTensor &t)
{
    for (int c = 0; c < t.channels; ++c)
        for (int y = 0; y < t.height; ++y) {
            float *row = t.plane(c) + qsizetype(y) * t.width;
            std::reverse(row, row + t.width);
        }
}

class RandomHorizontalFlip final : public PreparedOp
{
public:
    double p = 0.5;

    void apply(RunState &run) const override
    {
        run.trace->applied = run.coin(p);
        if (run.trace->applied) {
            if (run.data.isTensor())
                tensorFlipX(run.data.tensor);
            else
                run.data.image = pil::flipLeftRight(run.data.image);
            run.coords.flipX(run.size().width());
        }
        run.trace->summary
            = run.trace->applied ? QStringLiteral("flipped") : QStringLiteral("not flipped");
    }

    FusedPart fusedPart() const override { return fused::HorizontalFlip{p}; }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomHorizontalFlip>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    return op;
}

} // namespace

const TransformDefinition &randomHorizontalFlip()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomHorizontalFlip"),
        .parameters = {opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Mirror left–right with probability p"),
        .category = TransformCategory::FlipAndGeometry,
        .random = true,
        .input = StepInput::Any,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops
