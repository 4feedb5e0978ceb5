// Grayscale(num_output_channels=1).
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class Grayscale final : public PreparedOp
{
public:
    int numOutputChannels = 1;

    void apply(RunState &run) const override
    {
        convertToGray(run, numOutputChannels);
        run.trace->summary = QStringLiteral("gray, %1 channel%2")
                                 .arg(numOutputChannels)
                                 .arg(numOutputChannels == 1 ? QString() : QStringLiteral("s"));
    }

    DataShape outputShape(const DataShape &input) const override
    {
        DataShape out = input;
        out.channels = numOutputChannels;
        return out;
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<Grayscale>();
    op->numOutputChannels
        = integer(a[u"num_output_channels"], QStringLiteral("num_output_channels"));
    if (op->numOutputChannels != 1 && op->numOutputChannels != 3)
        fail(QStringLiteral("num_output_channels should be either 1 or 3"));
    return op;
}

void review(AdviceWalk &walk, int, const TransformStep &step)
{
    const V c = stepArgument(step, QStringLiteral("num_output_channels"));
    walk.channels = c.kind == V::Kind::Int ? int(c.intValue) : 1;
}

} // namespace

const TransformDefinition &grayscale()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("Grayscale"),
        .parameters
        = {opt(QStringLiteral("num_output_channels"), V::integer(1), integerHint(1, 3))},
        .description = QStringLiteral("Convert to gray with 1 or 3 channels"),
        .category = TransformCategory::ColourAndBlur,
        .random = false,
        .input = StepInput::Any,
        .prepare = prepare,
        .review = review,
    };
    return definition;
}

} // namespace ifs::ops
