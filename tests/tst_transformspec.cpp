// Parsing and printing torchvision transform pipelines, checked against the real torchvision.
#include "testutil.h"
#include "transforms/transformspec.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

using namespace ifs;
using namespace ifs::test;
using namespace Qt::StringLiterals;

namespace {

struct ParseCase
{
    const char *name;
    QString source;
    QString printed;
};

QString compose(const QStringList &lines)
{
    QString out = QStringLiteral("transforms.Compose([\n");
    for (const QString &line : lines)
        out += QStringLiteral("    transforms.") + line + QStringLiteral(",\n");
    return out + QStringLiteral("])");
}

const QList<ParseCase> &parseCases()
{
    static const QList<ParseCase> cases{
        {"imagenet train",
         u"transforms.Compose([transforms.RandomResizedCrop(224), "
         u"transforms.RandomHorizontalFlip(), transforms.ToTensor(), "
         u"transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])"_s,
         compose({u"RandomResizedCrop(224)"_s, u"RandomHorizontalFlip()"_s, u"ToTensor()"_s,
                  u"Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])"_s})},
        {"T prefix, enum keyword",
         u"T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), "
         u"T.CenterCrop(224)])"_s,
         compose({u"Resize(256, interpolation=transforms.InterpolationMode.BICUBIC)"_s,
                  u"CenterCrop(224)"_s})},
        {"bare Compose, comments, trailing commas",
         u"Compose([\n    Resize((256, 256)),  # square\n"
         u"    # a comment line\n    RandomRotation(15.5, expand=True,),\n])\n"_s,
         compose({u"Resize((256, 256))"_s, u"RandomRotation(15.5, expand=True)"_s})},
        {"bare list, positional optional", u"[RandomCrop(32, 4), RandomHorizontalFlip(p=0.5)]"_s,
         compose({u"RandomCrop(32, padding=4)"_s, u"RandomHorizontalFlip()"_s})},
        {"single transform, full prefix",
         u"torchvision.transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)"_s,
         compose({u"ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)"_s})},
        {"fractions equal to defaults",
         u"RandomResizedCrop(224, scale=(0.08, 1.0), ratio=(3/4, 4/3))"_s,
         compose({u"RandomResizedCrop(224)"_s})},
        {"fractions", u"RandomResizedCrop(size=(160, 128), ratio=(3 / 4, 16/9), scale=(1/2, 1))"_s,
         compose({u"RandomResizedCrop((160, 128), scale=(0.5, 1), "
                  u"ratio=(0.75, 1.7777777777777777))"_s})},
        {"float spellings",
         u"Normalize(mean=(1e-3, .5, 2.), std=[1E+2, 123456789012345678.0, -0.0])"_s,
         compose({u"Normalize((0.001, 0.5, 2.0), [100.0, 1.2345678901234568e+17, -0.0])"_s})},
        {"strings", u"Pad([1, 2], fill=(255, 0, 0), padding_mode=\"reflect\")"_s,
         compose({u"Pad([1, 2], fill=(255, 0, 0), padding_mode='reflect')"_s})},
        {"positional enum, None and bool", u"Resize(64, InterpolationMode.NEAREST, None, True)"_s,
         compose({u"Resize(64, interpolation=transforms.InterpolationMode.NEAREST, "
                  u"antialias=True)"_s})},
        {"affine, one-element tuple",
         u"T.RandomAffine(degrees=(-10, 10), translate=(0.1, 0.1), scale=(0.9, 1.1), "
         u"shear=5, fill=(1,))"_s,
         compose({u"RandomAffine((-10, 10), translate=(0.1, 0.1), scale=(0.9, 1.1), "
                  u"shear=5, fill=(1,))"_s})},
        {"erasing", u"transforms.RandomErasing(p=0.25, value='random', inplace=False)"_s,
         compose({u"RandomErasing(p=0.25, value='random')"_s})},
        {"blur defaults", u"GaussianBlur(kernel_size=5, sigma=(0.1, 2.0))"_s,
         compose({u"GaussianBlur(5)"_s})},
        {"Compose keyword", u"Compose(transforms=[Grayscale(3), RandomGrayscale()])"_s,
         compose({u"Grayscale(num_output_channels=3)"_s, u"RandomGrayscale()"_s})},
        {"empty Compose", u"Compose([])"_s, u"transforms.Compose([])"_s},
        {"int vs float default", u"ColorJitter(brightness=0, contrast=0.0)"_s,
         compose({u"ColorJitter(contrast=0.0)"_s})},
        {"parentheses and unary plus", u"RandomRotation(degrees=[(-5), +5])"_s,
         compose({u"RandomRotation([-5, 5])"_s})},
        {"vertical flip, escapes",
         u"[RandomVerticalFlip(0.25), RandomCrop(8, padding_mode='it\\'s')]"_s,
         compose({u"RandomVerticalFlip(p=0.25)"_s, u"RandomCrop(8, padding_mode=\"it's\")"_s})},
        {"containers",
         u"T.Compose([T.RandomApply([T.ColorJitter(0.4), T.RandomGrayscale(p=0.1)], p=0.5), "
         u"T.RandomChoice([T.RandomRotation(10), T.Compose([T.CenterCrop(20), T.Resize(32)])], "
         u"p=[1, 2]), T.RandomOrder(transforms=[T.RandomInvert(), "
         u"T.RandomSolarize(threshold=128, p=0.5)])])"_s,
         compose({u"RandomApply([transforms.ColorJitter(brightness=0.4), "
                  u"transforms.RandomGrayscale()])"_s,
                  u"RandomChoice([transforms.RandomRotation(10), transforms.Compose(["
                  u"transforms.CenterCrop(20), transforms.Resize(32)])], p=[1, 2])"_s,
                  u"RandomOrder([transforms.RandomInvert(), transforms.RandomSolarize(128)])"_s})},
        {"policies",
         u"[T.AutoAugment(T.AutoAugmentPolicy.CIFAR10), T.RandAugment(num_ops=3), "
         u"T.TrivialAugmentWide(interpolation=T.InterpolationMode.BILINEAR), "
         u"T.AugMix(severity=4), T.RandomPerspective(0.3, p=1.0)]"_s,
         compose({u"AutoAugment(policy=transforms.AutoAugmentPolicy.CIFAR10)"_s,
                  u"RandAugment(num_ops=3)"_s,
                  u"TrivialAugmentWide(interpolation=transforms.InterpolationMode.BILINEAR)"_s,
                  u"AugMix(severity=4)"_s, u"RandomPerspective(distortion_scale=0.3, p=1.0)"_s})},
        {"code kept as written",
         u"[T.ToTensor(), T.ConvertImageDtype(torch.float), "
         u"T.Lambda(lambda x: x[:, ::2, (1, 2)]), T.ToPILImage()]"_s,
         compose({u"ToTensor()"_s, u"ConvertImageDtype(torch.float)"_s,
                  u"Lambda(lambda x: x[:, ::2, (1, 2)])"_s, u"ToPILImage()"_s})},
        {"linear transformation keywords",
         u"LinearTransformation(torch.eye(3), mean_vector=torch.zeros(3))"_s,
         compose({u"LinearTransformation(torch.eye(3), torch.zeros(3))"_s})},
    };
    return cases;
}

// Sources that torchvision accepts but whose printed form is checked only through the oracle
// (RandomCrop with padding_mode "it's" is rejected by torchvision, so it is left out there).
bool oracleCanEvaluate(const ParseCase &c)
{
    // A Lambda's attributes hold a function whose repr has its address: never equal twice.
    return !c.source.contains(u"it\\'s"_s) && !c.source.contains(u"Lambda"_s);
}

} // namespace

class TestTransformSpec : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void parse_data();
    void parse();
    void model();
    void normalize();
    void floatRepr_data();
    void floatRepr();
    void errors_data();
    void errors();
    void torchvisionRoundTrip();
    void signaturesMatchTorchvision();

private:
    QJsonObject m_oracle;
    QList<int> m_oracleCases; // parse case index for each pair of oracle sources
};

void TestTransformSpec::initTestCase()
{
    // One oracle call for everything: each evaluable case's source and its printed form,
    // and the signatures of all known transforms.
    QJsonArray sources;
    for (int i = 0; i < parseCases().size(); ++i) {
        const ParseCase &c = parseCases()[i];
        if (!oracleCanEvaluate(c))
            continue;
        const Result<TransformPipeline> parsed = parseTransforms(c.source);
        QVERIFY2(parsed.ok(), qPrintable(parsed.errorMessage()));
        sources.append(c.source);
        sources.append(toTorchvisionSource(parsed.value()));
        m_oracleCases.append(i);
    }
    QJsonArray names;
    for (const TransformSignature &sig : knownTransforms())
        names.append(sig.name);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString request = dir.filePath(u"request.json"_s);
    QVERIFY(writeFile(
        request,
        QJsonDocument(QJsonObject{{u"sources"_s, sources}, {u"signatures"_s, names}}).toJson()));
    const ProcessResult result = runOracle(u"transformspec_oracle.py"_s, {request});
    QVERIFY2(result.exitCode == 0 && !result.crashed, result.err.constData());
    QJsonParseError error;
    m_oracle = QJsonDocument::fromJson(result.out, &error).object();
    QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString()));
}

void TestTransformSpec::parse_data()
{
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("printed");
    for (const ParseCase &c : parseCases())
        QTest::newRow(c.name) << c.source << c.printed;
}

void TestTransformSpec::parse()
{
    QFETCH(QString, source);
    QFETCH(QString, printed);
    const Result<TransformPipeline> parsed = parseTransforms(source);
    QVERIFY2(parsed.ok(), qPrintable(parsed.errorMessage()));
    QCOMPARE(toTorchvisionSource(parsed.value()), printed);
    // Round trip: parse(print(p)) == p, and printing is idempotent.
    const Result<TransformPipeline> again = parseTransforms(printed);
    QVERIFY2(again.ok(), qPrintable(again.errorMessage()));
    QVERIFY(again.value() == parsed.value());
    QCOMPARE(toTorchvisionSource(again.value()), printed);
}

void TestTransformSpec::model()
{
    const Result<TransformPipeline> parsed = parseTransforms(
        u"T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), "
        u"T.Normalize(mean=[0.5], std=(1/2,)), T.RandomCrop(32, padding=4, fill=-1)])"_s);
    QVERIFY2(parsed.ok(), qPrintable(parsed.errorMessage()));
    const QList<TransformStep> &steps = parsed->steps;
    QCOMPARE(steps.size(), 3);

    QCOMPARE(steps[0].name, u"Resize"_s);
    QCOMPARE(steps[0].args.size(), 2);
    QVERIFY(steps[0].args[0].keyword.isEmpty());
    QVERIFY(steps[0].args[0].value == TransformValue::integer(256));
    QCOMPARE(steps[0].args[1].keyword, u"interpolation"_s);
    QVERIFY(steps[0].args[1].value == TransformValue::interpolation(u"BICUBIC"_s));

    QCOMPARE(steps[1].name, u"Normalize"_s);
    QVERIFY(steps[1].args[0].value == TransformValue::list({TransformValue::real(0.5)}));
    QVERIFY(steps[1].args[1].value == TransformValue::tuple({TransformValue::real(0.5)}));

    QCOMPARE(steps[2].args.size(), 3);
    QCOMPARE(steps[2].args[1].keyword, u"padding"_s);
    QCOMPARE(steps[2].args[2].keyword, u"fill"_s);
    QVERIFY(steps[2].args[2].value == TransformValue::integer(-1));

    // Ints and floats stay apart: their reprs differ in torchvision.
    QVERIFY(!(TransformValue::integer(1) == TransformValue::real(1.0)));
    QVERIFY(!(TransformValue::real(0.0) == TransformValue::real(-0.0)));
}

void TestTransformSpec::normalize()
{
    // A step built in code, with an explicit default and a positional optional argument.
    TransformStep step;
    step.name = u"RandomRotation"_s;
    step.args = {{QString(), TransformValue::integer(10)},
                 {QString(), TransformValue::interpolation(u"BILINEAR"_s)},
                 {u"fill"_s, TransformValue::integer(0)}};
    const Result<TransformStep> normalized = normalizeStep(step);
    QVERIFY2(normalized.ok(), qPrintable(normalized.errorMessage()));
    QCOMPARE(normalized->args.size(), 2);
    QCOMPARE(normalized->args[1].keyword, u"interpolation"_s);
    TransformPipeline pipeline;
    pipeline.steps = {step};
    QCOMPARE(toTorchvisionSource(pipeline),
             compose({u"RandomRotation(10, "
                      u"interpolation=transforms.InterpolationMode.BILINEAR)"_s}));

    step.args.append({u"angle"_s, TransformValue::integer(1)});
    const Result<TransformStep> bad = normalizeStep(step);
    QVERIFY(!bad.ok());
    QVERIFY2(bad.errorMessage().contains(u"unexpected keyword argument “angle”"_s),
             qPrintable(bad.errorMessage()));

    TransformStep unknown;
    unknown.name = u"Solarize"_s;
    QVERIFY(!normalizeStep(unknown).ok());
}

void TestTransformSpec::floatRepr_data()
{
    QTest::addColumn<double>("value");
    QTest::addColumn<QString>("repr"); // what Python's repr() prints
    QTest::newRow("0.1") << 0.1 << u"0.1"_s;
    QTest::newRow("1/3") << 1.0 / 3.0 << u"0.3333333333333333"_s;
    QTest::newRow("1e-5") << 1e-5 << u"1e-05"_s;
    QTest::newRow("2.5e-5") << 2.5e-5 << u"2.5e-05"_s;
    QTest::newRow("1e-4") << 1e-4 << u"0.0001"_s;
    QTest::newRow("1e15") << 1e15 << u"1000000000000000.0"_s;
    QTest::newRow("1e16") << 1e16 << u"1e+16"_s;
    QTest::newRow("100") << 100.0 << u"100.0"_s;
    QTest::newRow("-0.0") << -0.0 << u"-0.0"_s;
    QTest::newRow("-1.5") << -1.5 << u"-1.5"_s;
    QTest::newRow("denormal") << 5e-324 << u"5e-324"_s;
    QTest::newRow("max") << 1.7976931348623157e308 << u"1.7976931348623157e+308"_s;
    QTest::newRow("123.456") << 123.456 << u"123.456"_s;
}

void TestTransformSpec::floatRepr()
{
    QFETCH(double, value);
    QFETCH(QString, repr);
    QCOMPARE(toPythonLiteral(TransformValue::real(value)), repr);
    const Result<TransformPipeline> back
        = parseTransforms(u"RandomHorizontalFlip(p="_s + repr + u')');
    QVERIFY2(back.ok(), qPrintable(back.errorMessage()));
    QVERIFY(back->steps[0].args[0].value == TransformValue::real(value));
}

void TestTransformSpec::errors_data()
{
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("message"); // the first line, " at line L, column C" included
    QTest::addColumn<int>("column"); // for the caret

    QTest::newRow("unknown transform")
        << u"transforms.Compose([\n    RandomResizeCrop(224),\n])"_s
        << u"Unknown transform “RandomResizeCrop” at line 2, column 5 "
           u"(did you mean RandomResizedCrop?)"_s
        << 5;
    QTest::newRow("unknown transform with prefix")
        << u"T.Compose([T.ToTensor(),\n  T.Normalise([0.5], [0.5])])"_s
        << u"Unknown transform “Normalise” at line 2, column 5 (did you mean Normalize?)"_s << 5;
    QTest::newRow("unknown keyword")
        << u"RandomHorizontalFlip(prob=0.5)"_s
        << u"RandomHorizontalFlip() got an unexpected keyword argument “prob” at line 1, "
           u"column 22 (parameters: p)"_s
        << 22;
    QTest::newRow("keyword typo")
        << u"Resize(256, antialas=True)"_s
        << u"Resize() got an unexpected keyword argument “antialas” at line 1, column 13 "
           u"(did you mean antialias? parameters: size, interpolation, max_size, antialias)"_s
        << 13;
    QTest::newRow("missing argument")
        << u"[ToTensor(), CenterCrop()]"_s
        << u"CenterCrop() missing required argument “size” at line 1, column 14 "
           u"(parameters: size)"_s
        << 14;
    QTest::newRow("too many positional")
        << u"CenterCrop(1, 2)"_s
        << u"CenterCrop() takes 1 positional argument but 2 were given at line 1, column 15 "
           u"(parameters: size)"_s
        << 15;
    QTest::newRow("ToTensor takes none")
        << u"ToTensor(1)"_s
        << u"ToTensor() takes 0 positional arguments but 1 was given at line 1, column 10 "
           u"(parameters: none)"_s
        << 10;
    QTest::newRow("multiple values")
        << u"Resize(256, size=3)"_s
        << u"Resize() got multiple values for argument “size” at line 1, column 13"_s << 13;
    QTest::newRow("repeated keyword")
        << u"Resize(size=3, size=4)"_s << u"Keyword argument “size” repeated at line 1, column 16"_s
        << 16;
    QTest::newRow("positional after keyword")
        << u"Resize(size=3, 4)"_s
        << u"Positional argument follows keyword argument at line 1, column 16"_s << 16;
    QTest::newRow("bad interpolation")
        << u"Resize(256,\n       interpolation=InterpolationMode.BILINAER)"_s
        << u"Unknown interpolation mode “BILINAER” at line 2, column 22 "
           u"(did you mean BILINEAR?)"_s
        << 22;
    QTest::newRow("unclosed call")
        << u"Resize(256"_s << u"Expected “,” or “)” but found end of input at line 1, column 11"_s
        << 11;
    QTest::newRow("unclosed Compose")
        << u"Compose([Resize(256)]"_s
        << u"Expected “)” to close Compose( but found end of input at line 1, column 22"_s << 22;
    QTest::newRow("unterminated string")
        << u"Pad(1, padding_mode='edge)"_s << u"Unterminated string at line 1, column 21"_s << 21;
    QTest::newRow("unknown module") << u"np.Resize(3)"_s
                                    << u"Unknown module “np” at line 1, column 1 "
                                       u"(use transforms., T. or torchvision.transforms.)"_s
                                    << 1;
    QTest::newRow("trailing junk")
        << u"Resize(3) extra"_s << u"Unexpected “extra” after the pipeline at line 1, column 11"_s
        << 11;
    QTest::newRow("empty")
        << u"  # nothing\n"_s
        << u"Expected a transform pipeline but the text is empty at line 1, column 1"_s << 1;
    QTest::newRow("division by zero")
        << u"Resize(1/0)"_s << u"Division by zero at line 1, column 9"_s << 9;
    QTest::newRow("huge integer")
        << u"Resize(99999999999999999999)"_s
        << u"Integer 99999999999999999999 is too large at line 1, column 8"_s << 8;
    QTest::newRow("name as value")
        << u"Resize(size)"_s
        << u"Expected a value but found “size” at line 1, column 8 (values are numbers, "
           u"strings, True, False, None, tuples, lists or InterpolationMode.X)"_s
        << 8;
    QTest::newRow("nested Compose")
        << u"Compose([Compose([])])"_s << u"Nested Compose is not supported at line 1, column 10"_s
        << 10;
    QTest::newRow("odd character")
        << u"Resize(3 @ 4)"_s << u"Unexpected character “@” at line 1, column 10"_s << 10;
    QTest::newRow("bad number") << u"Resize(3x)"_s << u"Invalid number “3x” at line 1, column 9"_s
                                << 9;
    QTest::newRow("missing comma in list")
        << u"[Resize(3) CenterCrop(2)]"_s
        << u"Expected “,” or “]” but found “CenterCrop” at line 1, column 12"_s << 12;
}

void TestTransformSpec::errors()
{
    QFETCH(QString, source);
    QFETCH(QString, message);
    QFETCH(int, column);
    const Result<TransformPipeline> parsed = parseTransforms(source);
    QVERIFY(!parsed.ok());
    const QStringList lines = parsed.errorMessage().split(u'\n');
    QCOMPARE(lines.size(), 3);
    QCOMPARE(lines[0], message);
    // The quoted line and a caret under the spot.
    QVERIFY2(source.split(u'\n').contains(lines[1]), qPrintable(lines[1]));
    QCOMPARE(lines[2], QString(column - 1, u' ') + u'^');
}

void TestTransformSpec::torchvisionRoundTrip()
{
    const QJsonArray results = m_oracle.value(u"results"_s).toArray();
    QCOMPARE(results.size(), m_oracleCases.size() * 2);
    for (int k = 0; k < m_oracleCases.size(); ++k) {
        const ParseCase &c = parseCases()[m_oracleCases[k]];
        const QJsonObject original = results[2 * k].toObject();
        const QJsonObject printed = results[2 * k + 1].toObject();
        const QByteArray what = QByteArray(c.name) + ": ";
        QVERIFY2(original.value(u"ok"_s).toBool(),
                 QByteArray(what + original.value(u"error"_s).toString().toUtf8()).constData());
        QVERIFY2(printed.value(u"ok"_s).toBool(),
                 QByteArray(what + printed.value(u"error"_s).toString().toUtf8()).constData());
        // Same transforms, same repr, same attributes (full-precision repr of each).
        const QJsonArray a = original.value(u"transforms"_s).toArray();
        const QJsonArray b = printed.value(u"transforms"_s).toArray();
        const QByteArray diff
            = what + QJsonDocument(a).toJson() + "\nvs\n" + QJsonDocument(b).toJson();
        QVERIFY2(a == b, diff.constData());
        QCOMPARE(a.size(), parseTransforms(c.source)->steps.size());
    }
}

void TestTransformSpec::signaturesMatchTorchvision()
{
    QCOMPARE(m_oracle.value(u"torchvision"_s).toString().left(4), u"0.14"_s);
    const QJsonObject signatures = m_oracle.value(u"signatures"_s).toObject();
    QCOMPARE(signatures.size(), knownTransforms().size());
    for (const TransformSignature &sig : knownTransforms()) {
        const QJsonArray real = signatures.value(sig.name).toArray();
        const QByteArray name = sig.name.toUtf8();
        QVERIFY2(real.size() == sig.parameters.size(),
                 QByteArray(name + ": " + QJsonDocument(real).toJson()).constData());
        for (int i = 0; i < real.size(); ++i) {
            const QJsonObject p = real[i].toObject();
            const TransformParameter &ours = sig.parameters[i];
            const QByteArray where = name + '.' + ours.name.toUtf8();
            QCOMPARE(p.value(u"name"_s).toString(), ours.name);
            QVERIFY2(p.value(u"required"_s).toBool() == ours.required, where.constData());
            if (ours.required)
                continue;
            QVERIFY2(p.value(u"default_check"_s).toBool(), where.constData());
            QCOMPARE(toPythonLiteral(ours.defaultValue), p.value(u"default"_s).toString());
        }
    }
}

QTEST_GUILESS_MAIN(TestTransformSpec)
#include "tst_transformspec.moc"
