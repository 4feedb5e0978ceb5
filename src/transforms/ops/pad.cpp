// Pad(padding, fill=0, padding_mode='constant').
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class Pad final : public PreparedOp
{
public:
    std::array<int, 4> padding{}; ///< left, top, right, bottom
    std::vector<double> fill{0.0};
    pil::PadMode padMode = pil::PadMode::Constant;

    void apply(RunState &run) const override
    {
        run.pad(padding, padMode, fill);
        run.trace->summary = QStringLiteral("left %1, top %2, right %3, bottom %4")
                                 .arg(padding[0])
                                 .arg(padding[1])
                                 .arg(padding[2])
                                 .arg(padding[3]);
    }

    DataShape outputShape(const DataShape &input) const override
    {
        DataShape out = input;
        if (input.sizeKnown()) {
            out.width = input.width + padding[0] + padding[2];
            out.height = input.height + padding[1] + padding[3];
        }
        return out;
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<Pad>();
    op->padding = paddingLtrb(a[u"padding"]);
    op->fill = fillValues(a[u"fill"]);
    op->padMode = padMode(a[u"padding_mode"]);
    return op;
}

void review(AdviceWalk &walk, int, const TransformStep &step)
{
    if (!walk.size)
        return;
    const std::vector<double> p = numberList(stepArgument(step, QStringLiteral("padding")));
    if (p.size() == 1)
        *walk.size += QSize(int(2 * p[0]), int(2 * p[0]));
    else if (p.size() == 2)
        *walk.size += QSize(int(2 * p[0]), int(2 * p[1]));
    else if (p.size() == 4)
        *walk.size += QSize(int(p[0] + p[2]), int(p[1] + p[3]));
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    return {positional(V::integer(4))};
}

} // namespace

const TransformDefinition &pad()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("Pad"),
        .parameters = {req(QStringLiteral("padding")), opt(QStringLiteral("fill"), V::integer(0)),
                       paddingModeParameter()},
        .description = QStringLiteral("Add borders: constant, edge, reflect or symmetric"),
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
