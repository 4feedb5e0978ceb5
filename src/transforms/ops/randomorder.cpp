// RandomOrder(transforms): all of the transforms, in an order Python's random.shuffle draws.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class RandomOrder final : public PreparedOp
{
public:
    std::vector<PreparedStep> steps;

    void apply(RunState &run) const override
    {
        // random.shuffle(list(range(n))): Python's random, not torch's.
        const std::vector<int> order = run.python().shuffledRange(int(steps.size()));
        std::vector<const PreparedStep *> ordered;
        for (const int i : order)
            ordered.push_back(&steps[size_t(i)]);
        run.trace->summary
            = steps.empty() ? QStringLiteral("nothing to do") : applyNested(run, ordered);
    }

    DataShape outputShape(const DataShape &input) const override
    {
        // The order changes what crops and resizes see: known only when every step keeps the
        // shape.
        std::vector<const PreparedStep *> all;
        for (const PreparedStep &step : steps)
            all.push_back(&step);
        DataShape shape = nestedOutputShape(input, {{}, all});
        if (!shape.exact) {
            shape.width = shape.height = -1;
        }
        return shape;
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomOrder>();
    op->steps = prepareNested(a[u"transforms"]);
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    const TransformStep jitter{QStringLiteral("ColorJitter"), {positional(V::real(0.3))}};
    const TransformStep gray{QStringLiteral("RandomGrayscale"), {}};
    return {positional(V::list({V::call(jitter), V::call(gray)}))};
}

} // namespace

const TransformDefinition &randomOrder()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomOrder"),
        .parameters = {req(QStringLiteral("transforms"))},
        .description = QStringLiteral("Apply a list of transforms in a random order"),
        .category = TransformCategory::Combine,
        .random = true,
        .input = StepInput::Any,
        .prepare = prepare,
        .review = reviewNested,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops
