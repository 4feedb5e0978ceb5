// The transform registry: every transform is one complete unit whose declared facts (random,
// input kind, signature, menu category, new-step arguments) agree with what its code does, and
// the op kit composes: a container op built from prepareStep() runs nested steps exactly as a
// pipeline of the same steps does (the shape RandomApply, RandomChoice and RandomOrder will take).
#include "transforms/torchrng.h"
#include "transforms/transformop.h"
#include "transforms/transformregistry.h"
#include "transforms/transforms.h"

#include <QSet>
#include <QtTest>

using namespace ifs;

namespace {

/// A 40 × 30 RGB image with different values in every pixel and channel.
QImage testImage()
{
    QImage image(40, 30, QImage::Format_RGB888);
    for (int y = 0; y < image.height(); ++y) {
        uchar *row = image.scanLine(y);
        for (int x = 0; x < image.width(); ++x) {
            row[3 * x] = uchar(6 * x + y);
            row[3 * x + 1] = uchar(8 * y + x);
            row[3 * x + 2] = uchar(x * y);
        }
    }
    return image;
}

/// The step a user gets from Add Step for images of testImage()'s size.
TransformStep newStepFor(const TransformDefinition &definition)
{
    return newTransformStep(definition.name, DatasetHints{QSize(40, 30), false});
}

/// The pipeline that runs `step` on what it takes: the image, or its tensor after ToTensor.
TransformPipeline pipelineFor(const TransformDefinition &definition, const TransformStep &step)
{
    TransformPipeline pipeline;
    if (definition.input == StepInput::Tensor)
        pipeline.steps.append({QStringLiteral("ToTensor"), {}});
    pipeline.steps.append(step);
    return pipeline;
}

/// Runs nested steps in turn on the same run state, each with its own trace, and joins their
/// summaries: what a container transform's apply() does with the steps in its arguments.
class Sequence final : public ops::PreparedOp
{
public:
    std::vector<ops::PreparedStep> steps;

    void apply(ops::RunState &run) const override
    {
        StepTrace *outer = run.trace;
        QStringList summaries;
        for (const ops::PreparedStep &step : steps) {
            StepTrace inner;
            run.trace = &inner;
            step.apply(run);
            summaries.append(inner.summary);
        }
        run.trace = outer;
        outer->summary = summaries.join(QStringLiteral("; "));
    }
};

} // namespace

class TstTransformRegistry : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void everyTransformIsComplete()
    {
        const QList<const TransformDefinition *> &all = transformDefinitions();
        QVERIFY(!all.isEmpty());
        QCOMPARE(all.size(), knownTransforms().size());
        QSet<QString> names;
        const QList<TransformCategory> categories = transformCategories();
        for (qsizetype i = 0; i < all.size(); ++i) {
            const TransformDefinition &d = *all[i];
            QVERIFY2(!names.contains(d.name), qPrintable(d.name));
            names.insert(d.name);
            QVERIFY2(d.prepare, qPrintable(d.name));
            QVERIFY2(!d.description.isEmpty(), qPrintable(d.name));
            QVERIFY2(categories.contains(d.category), qPrintable(d.name));
            QCOMPARE(findDefinition(d.name), &d);
            QCOMPARE(transformDescription(d.name), d.description);
            QCOMPARE(isRandomTransform(d.name), d.random);
            // The signature table is the registry's, in its order.
            const TransformSignature &signature = knownTransforms()[i];
            QCOMPARE(signature.name, d.name);
            QCOMPARE(signature.parameters.size(), d.parameters.size());
            for (qsizetype p = 0; p < d.parameters.size(); ++p)
                QCOMPARE(signature.parameters[p].name, d.parameters[p].name);
            // A choice hint offers the default.
            for (const TransformParameter &p : d.parameters)
                if (p.hint.editor == ParameterHint::Editor::Choice)
                    QVERIFY2(p.hint.choices.contains(p.defaultValue.text), qPrintable(p.name));
        }
        QVERIFY(!findDefinition(QStringLiteral("CentreCrop")));
        QVERIFY(transformDescription(QStringLiteral("CentreCrop")).isEmpty());
        // Every menu section has transforms and a title of its own.
        QSet<QString> titles;
        for (const TransformCategory category : categories) {
            const QString title = transformCategoryTitle(category);
            QVERIFY(!title.isEmpty() && !titles.contains(title));
            titles.insert(title);
            QVERIFY2(std::any_of(all.begin(), all.end(),
                                 [category](const TransformDefinition *d) {
                                     return d->category == category;
                                 }),
                     qPrintable(title));
        }
    }

    void flagsAgreeWithTheCode_data()
    {
        QTest::addColumn<QString>("name");
        for (const TransformDefinition *d : transformDefinitions())
            QTest::newRow(qPrintable(d->name)) << d->name;
    }

    void flagsAgreeWithTheCode()
    {
        // The step Add Step makes compiles and runs on what the transform takes; it draws random
        // numbers exactly when the transform says it is random; and the other kind of input is
        // refused before the step runs.
        QFETCH(QString, name);
        const TransformDefinition &d = *findDefinition(name);
        const TransformStep step = newStepFor(d);
        if (!d.unsupported.isEmpty()) {
            // Read but not run (a Lambda's code, AugMix): compile() refuses with the reason, a
            // preview skips it, passing its input on without a draw.
            const Result<CompiledPipeline> refused = CompiledPipeline::compile({{step}});
            QVERIFY(!refused.ok());
            QVERIFY2(refused.errorMessage().contains(d.unsupported),
                     qPrintable(refused.errorMessage()));
            const Result<CompiledPipeline> skipping
                = CompiledPipeline::compile({{step}}, CompiledPipeline::Unsupported::Skip);
            QVERIFY(skipping.ok());
            TorchGenerator rng(7);
            const Result<TransformRun> run = skipping->run(testImage(), rng);
            QVERIFY(run.ok());
            QCOMPARE(run->output.image, testImage());
            QVERIFY(!run->steps.constLast().applied);
            QVERIFY(run->steps.constLast().summary.contains(d.unsupported));
            QCOMPARE(rng.random64(), TorchGenerator(7).random64());
            return;
        }
        // A preview-only transform (FiveCrop's tuple) is refused for training with its reason
        // and runs in a preview.
        const auto mode = d.previewOnly.isEmpty() ? CompiledPipeline::Unsupported::Refuse
                                                  : CompiledPipeline::Unsupported::Skip;
        if (!d.previewOnly.isEmpty()) {
            const Result<CompiledPipeline> training = CompiledPipeline::compile({{step}});
            QVERIFY(!training.ok());
            QVERIFY(training.errorMessage().contains(d.previewOnly));
        }
        const Result<CompiledPipeline> compiled
            = CompiledPipeline::compile(pipelineFor(d, step), mode);
        QVERIFY2(compiled.ok(), qPrintable(compiled.errorMessage()));
        QCOMPARE(compiled->isRandom(), d.random);
        TorchGenerator rng(7);
        const Result<TransformRun> run = compiled->run(testImage(), rng);
        QVERIFY2(run.ok(), qPrintable(run.errorMessage()));
        QVERIFY(!run->steps.constLast().summary.isEmpty());
        const bool drew = rng.random64() != TorchGenerator(7).random64();
        QCOMPARE(drew, d.random);

        if (d.input == StepInput::Any)
            return;
        TransformPipeline wrong{{step}};
        if (d.input == StepInput::Image)
            wrong.steps.prepend({QStringLiteral("ToTensor"), {}});
        const Result<CompiledPipeline> refused = CompiledPipeline::compile(wrong, mode);
        QVERIFY(refused.ok());
        TorchGenerator unused(7);
        const Result<TransformRun> failed = refused->run(testImage(), unused);
        QVERIFY(!failed.ok());
        QVERIFY2(failed.errorMessage().contains(d.input == StepInput::Image
                                                    ? QStringLiteral("before ToTensor")
                                                    : QStringLiteral("put ToTensor() before it")),
                 qPrintable(failed.errorMessage()));
        QCOMPARE(unused.random64(), TorchGenerator(7).random64()); // refused before any draw
    }

    void newStepsFitTheDataset()
    {
        // Sizes follow the images: their shorter side up to 64 pixels, ImageNet's beyond.
        const DatasetHints small{QSize(28, 32), true};
        QCOMPARE(small.side(), 28);
        QCOMPARE((DatasetHints{QSize(500, 375), false}.side()), 224);
        QCOMPARE(DatasetHints{}.side(), 224);
        QCOMPARE(toTorchvisionSource({{newTransformStep(QStringLiteral("RandomCrop"), small)}}),
                 QStringLiteral("transforms.Compose([\n    transforms.RandomCrop(28, "
                                "padding=3),\n])"));
        QCOMPARE(toTorchvisionSource({{newTransformStep(QStringLiteral("Normalize"), small)}}),
                 QStringLiteral("transforms.Compose([\n    transforms.Normalize((0.5,), "
                                "(0.5,)),\n])"));
        // Unknown names come back without arguments.
        QCOMPARE(newTransformStep(QStringLiteral("Nope"), small),
                 (TransformStep{QStringLiteral("Nope"), {}}));
    }

    void argumentsHaveDefaultsFilledIn()
    {
        const TransformDefinition &d = *findDefinition(QStringLiteral("RandomResizedCrop"));
        const TransformStep bound
            = normalizeStep({d.name,
                             {{QString(), TransformValue::integer(64)},
                              {QStringLiteral("ratio"),
                               TransformValue::tuple(
                                   {TransformValue::real(0.5), TransformValue::real(2.0)})}}})
                  .value();
        const ops::OpArguments args(d, bound);
        QCOMPARE(args[u"size"], TransformValue::integer(64));
        QCOMPARE(args[u"ratio"], ops::floatPair(0.5, 2.0));
        QCOMPARE(args[u"scale"], ops::floatPair(0.08, 1.0)); // the default
        QCOMPARE(args[u"no_such_parameter"], TransformValue::none());
    }

    void nestedStepsRunAsThePipelineDoes()
    {
        // A container prepares the steps in its arguments with prepareStep() and applies them on
        // the run it is given: the output, the draws and the crop box are the pipeline's.
        const TransformPipeline pipeline
            = parseTransforms(QStringLiteral("[T.RandomCrop(24, padding=2), "
                                             "T.RandomHorizontalFlip(), T.ColorJitter(0.3, 0.3), "
                                             "T.ToTensor(), T.RandomErasing(p=1)]"))
                  .value();
        Sequence sequence;
        for (const TransformStep &step : pipeline.steps)
            sequence.steps.push_back(ops::prepareStep(normalizeStep(step).value()));

        for (uint64_t seed : {1, 2, 3}) {
            TorchGenerator expectedRng(seed);
            const TransformRun expected
                = CompiledPipeline::compile(pipeline).value().run(testImage(), expectedRng).value();

            TorchGenerator rng(seed);
            StepTrace trace;
            ops::RunState run{rng, {}, {}, &trace};
            run.data.image = testImage();
            sequence.apply(run);
            QVERIFY(run.data.isTensor());
            QCOMPARE(run.data.tensor.data, expected.output.tensor.data);
            QCOMPARE(rng.random64(), expectedRng.random64());
            QStringList summaries;
            for (const StepTrace &s : expected.steps)
                summaries.append(s.summary);
            QCOMPARE(trace.summary, summaries.join(QStringLiteral("; ")));
        }

        // A nested step with bad arguments fails as torchvision's constructor would.
        try {
            ops::prepareStep(normalizeStep({QStringLiteral("Resize"),
                                            {{QString(), TransformValue::integer(-3)}}})
                                 .value());
            QFAIL("Resize(-3) was prepared");
        } catch (const ops::StepError &e) {
            QCOMPARE(e.message, QStringLiteral("size must be positive, not -3"));
        }
    }
};

QTEST_GUILESS_MAIN(TstTransformRegistry)
#include "tst_transformregistry.moc"
