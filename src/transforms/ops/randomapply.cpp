// RandomApply(transforms, p=0.5): all of the transforms, in order, with probability p.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

class RandomApply final : public PreparedOp
{
public:
    std::vector<PreparedStep> steps;
    double p = 0.5;

    std::vector<const PreparedStep *> all() const
    {
        std::vector<const PreparedStep *> out;
        for (const PreparedStep &step : steps)
            out.push_back(&step);
        return out;
    }

    void apply(RunState &run) const override
    {
        // `if self.p < torch.rand(1): return img`, compared in float32.
        const double r = run.rng.rand();
        if (float(p) < float(r)) {
            run.trace->applied = false;
            run.trace->summary = QStringLiteral("skipped (draw %1 > p)").arg(fmt(r));
            return;
        }
        run.trace->summary
            = steps.empty() ? QStringLiteral("applied, nothing to do") : applyNested(run, all());
    }

    DataShape outputShape(const DataShape &input) const override
    {
        return nestedOutputShape(input, {{}, all()});
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomApply>();
    op->steps = prepareNested(a[u"transforms"]);
    op->p = number(a[u"p"], QStringLiteral("p"));
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    const TransformStep jitter{QStringLiteral("ColorJitter"),
                               {positional(V::real(0.4)), positional(V::real(0.4)),
                                positional(V::real(0.4)), positional(V::real(0.1))}};
    return {positional(V::list({V::call(jitter)})), {QStringLiteral("p"), V::real(0.8)}};
}

} // namespace

const TransformDefinition &randomApply()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomApply"),
        .parameters = {req(QStringLiteral("transforms")), opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Apply a list of transforms with probability p"),
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
