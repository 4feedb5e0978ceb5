// RandomGrayscale(p=0.1): gray with as many channels as the input.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class RandomGrayscale final : public PreparedOp
{
public:
    double p = 0.1;

    void apply(RunState &run) const override
    {
        run.trace->applied = run.coin(p);
        if (!run.trace->applied) {
            run.trace->summary = QStringLiteral("kept colour");
            return;
        }
        const int outChannels = run.data.channels();
        convertToGray(run, outChannels);
        run.trace->summary = QStringLiteral("gray, %1 channel%2")
                                 .arg(outChannels)
                                 .arg(outChannels == 1 ? QString() : QStringLiteral("s"));
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomGrayscale>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    return op;
}

} // namespace

const TransformDefinition &randomGrayscale()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomGrayscale"),
        .parameters = {opt(QStringLiteral("p"), V::real(0.1))},
        .description = QStringLiteral("Convert to gray (keeping the channels) with probability p"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Any,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops
