// RandomChoice(transforms, p=None): one of the transforms, picked by Python's random.choices.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

#include <cmath>

namespace ifs::ops {

namespace {

class RandomChoice final : public PreparedOp
{
public:
    std::vector<PreparedStep> steps;
    std::vector<double> weights; ///< empty: equally likely

    void apply(RunState &run) const override
    {
        // random.choices(self.transforms, weights=self.p)[0]: Python's random, not torch's.
        const int k = run.python().choiceIndex(int(steps.size()), weights);
        run.trace->summary
            = QStringLiteral("chose %1: %2").arg(k).arg(applyNested(run, {&steps[size_t(k)]}));
    }

    DataShape outputShape(const DataShape &input) const override
    {
        std::vector<std::vector<const PreparedStep *>> possibilities;
        for (const PreparedStep &step : steps)
            possibilities.push_back({&step});
        return nestedOutputShape(input, possibilities);
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomChoice>();
    op->steps = prepareNested(a[u"transforms"]);
    if (op->steps.empty())
        fail(QStringLiteral("transforms is empty: random.choices() has nothing to pick"));
    const V &p = a[u"p"];
    if (p.kind != V::Kind::None) {
        if (!isSequence(p))
            fail(QStringLiteral("Argument p should be a sequence"));
        op->weights = numbers(p, QStringLiteral("p"));
        if (op->weights.size() != op->steps.size())
            fail(QStringLiteral("The number of weights does not match the population"));
        double total = 0.0;
        for (const double w : op->weights)
            total += w;
        if (!(total > 0.0))
            fail(QStringLiteral("Total of weights must be greater than zero"));
        if (!std::isfinite(total))
            fail(QStringLiteral("Total of weights must be finite"));
    }
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    const TransformStep rotate{QStringLiteral("RandomRotation"), {positional(V::integer(15))}};
    const TransformStep flip{QStringLiteral("RandomHorizontalFlip"),
                             {{QStringLiteral("p"), V::real(1.0)}}};
    return {positional(V::list({V::call(rotate), V::call(flip)}))};
}

} // namespace

const TransformDefinition &randomChoice()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomChoice"),
        .parameters = {req(QStringLiteral("transforms")), opt(QStringLiteral("p"), V::none())},
        .description
        = QStringLiteral("Apply one transform of a list, picked at random (weights p)"),
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
