#include "training/lrfinderdialog.h"

#include <QChart>
#include <QChartView>
#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QMouseEvent>
#include <QProgressBar>
#include <QPushButton>
#include <QScatterSeries>
#include <QVBoxLayout>
#include <QValueAxis>

#include <cmath>

namespace ifs {

// ------------------------------------------------------------------------------------------------
// LrFinderPlot

LrFinderPlot::LrFinderPlot(QWidget *parent)
    : QWidget(parent)
    , m_chart(new QChart)
    , m_view(new QChartView(m_chart, this))
{
    m_chart->legend()->setAlignment(Qt::AlignBottom);
    m_chart->setTitle(tr("Smoothed loss against the learning rate"));
    m_view->setRenderHint(QPainter::Antialiasing);
    m_view->setCursor(Qt::CrossCursor);
    m_view->setToolTip(tr("Click to use the learning rate under the cursor"));
    m_view->setMinimumSize(480, 300);
    m_view->viewport()->installEventFilter(this);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_view);
}

void LrFinderPlot::clear()
{
    m_chart->removeAllSeries();
    for (QAbstractAxis *axis : m_chart->axes()) {
        m_chart->removeAxis(axis);
        delete axis;
    }
    m_curve.clear();
}

void LrFinderPlot::setResult(const LrFindResult &result)
{
    clear();
    // plot_lr_find(skip_end=5): the last steps, where the loss shoots up, would squash the rest.
    const qsizetype shown = result.lrs.size() > 5 ? result.lrs.size() - 5 : result.lrs.size();
    auto *line = new QLineSeries;
    line->setName(tr("smoothed loss"));
    double low = INFINITY, high = -INFINITY;
    for (qsizetype i = 0; i < shown; ++i) {
        if (!std::isfinite(result.smoothed[i]))
            continue;
        m_curve.append({result.lrs[i], result.smoothed[i]});
        low = std::min(low, result.smoothed[i]);
        high = std::max(high, result.smoothed[i]);
    }
    line->append(m_curve);
    m_chart->addSeries(line);
    auto *x = new QLogValueAxis;
    x->setBase(10.0);
    x->setLabelFormat(QStringLiteral("%.0e"));
    x->setTitleText(tr("learning rate (log scale)"));
    auto *y = new QValueAxis;
    y->setTitleText(tr("loss"));
    m_chart->addAxis(x, Qt::AlignBottom);
    m_chart->addAxis(y, Qt::AlignLeft);
    line->attachAxis(x);
    line->attachAxis(y);
    if (m_curve.isEmpty())
        return;
    x->setRange(m_curve.first().x(), m_curve.last().x());
    const double margin = high > low ? 0.05 * (high - low) : 0.5;
    y->setRange(low - margin, high + margin);
    for (const LrSuggestion &s : result.suggestions) {
        auto *point = new QScatterSeries;
        // fastai marks the minimum itself; its suggestion is a tenth of that rate.
        point->setName(s.name == u"minimum"
                           ? tr("minimum (÷10: %1)").arg(QString::number(s.lr, 'e', 1))
                           : QStringLiteral("%1 %2").arg(s.name, QString::number(s.lr, 'e', 1)));
        point->setMarkerSize(11.0);
        point->append(s.pointLr, s.pointLoss);
        m_chart->addSeries(point);
        point->attachAxis(x);
        point->attachAxis(y);
    }
}

QList<QPointF> LrFinderPlot::curve() const
{
    return m_curve;
}

double LrFinderPlot::rateAt(const QPoint &position) const
{
    if (m_curve.isEmpty() || m_chart->series().isEmpty())
        return 0.0;
    const QPointF scene = m_view->mapToScene(position);
    const QPointF value
        = m_chart->mapToValue(m_chart->mapFromScene(scene), m_chart->series().front());
    return std::clamp(value.x(), m_curve.first().x(), m_curve.last().x());
}

bool LrFinderPlot::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == m_view->viewport() && event->type() == QEvent::MouseButtonRelease) {
        const auto *mouse = static_cast<QMouseEvent *>(event);
        const QPointF scene = m_view->mapToScene(mouse->position().toPoint());
        if (mouse->button() == Qt::LeftButton && !m_curve.isEmpty()
            && m_chart->plotArea().contains(m_chart->mapFromScene(scene)))
            Q_EMIT rateClicked(rateAt(mouse->position().toPoint()));
    }
    return QWidget::eventFilter(watched, event);
}

// ------------------------------------------------------------------------------------------------
// LrFinderDialog

LrFinderDialog::LrFinderDialog(const TrainConfig &config, QWidget *parent)
    : QDialog(parent)
    , m_config(config)
    , m_job(this)
    , m_status(new QLabel(this))
    , m_progress(new QProgressBar(this))
    , m_plot(new LrFinderPlot(this))
    , m_suggestionRow(new QHBoxLayout)
    , m_cancel(new QPushButton(tr("Cancel"), this))
{
    setWindowTitle(tr("Find Learning Rate"));
    setObjectName(QStringLiteral("lrFinderDialog"));
    m_status->setWordWrap(true);
    m_status->setText(tr("A short mock training whose learning rate grows from 1e-7 to 10, as "
                         "fastai's lr_find; the model is left as it was."));
    m_plot->hide();
    m_cancel->setObjectName(QStringLiteral("lrFinderCancel"));
    auto *bottom = new QHBoxLayout;
    bottom->addLayout(m_suggestionRow);
    bottom->addStretch(1);
    bottom->addWidget(m_cancel);
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_status);
    layout->addWidget(m_progress);
    layout->addWidget(m_plot, 1);
    layout->addLayout(bottom);

    // The training pool: a ramp is training, and must not hold the global pool's threads.
    m_job.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-training"), 4));
    m_job.onProgress([this](const LrFindProgress &p) {
        m_progress->setRange(0, p.iterations);
        m_progress->setValue(p.iteration);
        m_status->setText(tr("Step %1 of %2: learning rate %3, smoothed loss %4")
                              .arg(p.iteration)
                              .arg(p.iterations)
                              .arg(p.lr, 0, 'e', 2)
                              .arg(p.smoothed, 0, 'f', 4));
    });
    m_job.onFinished([this](LrFindResult result) {
        showResult(result);
        Q_EMIT runEnded();
    });
    m_job.onFailed([this](const Error &error) {
        m_progress->hide();
        m_status->setText(tr("The LR finder failed: %1").arg(error.message));
        m_cancel->setText(tr("Close"));
        Q_EMIT runEnded();
    });
    m_job.onCancelled([this] {
        m_progress->hide();
        m_status->setText(tr("Cancelled."));
        m_cancel->setText(tr("Close"));
        Q_EMIT runEnded();
    });
    connect(m_plot, &LrFinderPlot::rateClicked, this, &LrFinderDialog::choose);
    connect(m_cancel, &QPushButton::clicked, this, [this] {
        if (m_job.isRunning())
            m_job.requestCancel();
        else
            reject();
    });
}

LrFinderDialog::~LrFinderDialog() = default; // the job drops a run still going: it ends alone

void LrFinderDialog::start(const LrFindOptions &options)
{
    m_started = true;
    m_plot->hide();
    m_progress->show();
    m_progress->setRange(0, 0);
    m_cancel->setText(tr("Cancel"));
    qDeleteAll(m_suggestionButtons);
    m_suggestionButtons.clear();
    m_status->setText(tr("Preparing the data and the model…"));
    m_job.start([config = m_config, options,
                 dialog = this](JobContext<LrFindProgress> &context) -> Result<LrFindResult> {
        LrFindCallbacks callbacks;
        callbacks.progress = [&context](const LrFindProgress &p) {
            context.setProgress(p);
        };
        callbacks.status = [&context, dialog](const QString &text) {
            context.post([dialog, text] { dialog->m_status->setText(text); });
        };
        return findLearningRate(config, options, callbacks, context.cancelFlag());
    });
}

bool LrFinderDialog::waitForWorker(int milliseconds)
{
    return m_job.waitForWorker(QDeadlineTimer(milliseconds));
}

void LrFinderDialog::showEvent(QShowEvent *event)
{
    QDialog::showEvent(event);
    if (!m_started)
        start();
}

void LrFinderDialog::reject()
{
    if (m_job.isRunning())
        m_job.discard(); // closing: the run stops at its next step, unreported
    QDialog::reject();
}

void LrFinderDialog::showResult(const LrFindResult &result)
{
    m_result = result;
    m_progress->hide();
    m_plot->setResult(result);
    m_plot->show();
    m_cancel->setText(tr("Close"));
    m_status->setText(
        result.suggestions.isEmpty()
            ? result.stopMessage
            : tr("%1. Use a suggestion, or click the plot to use a rate.").arg(result.stopMessage));
    for (const LrSuggestion &s : result.suggestions) {
        const QString tip = s.name == u"steep" ? tr("Where the smoothed loss falls fastest")
            : s.name == u"minimum"
            ? tr("A tenth of the rate at the lowest loss (%1)").arg(s.pointLr, 0, 'e', 2)
            : tr("Inside the longest valley of the curve (fastai's default)");
        auto *button
            = new QPushButton(tr("Use %1: %2").arg(s.name, QString::number(s.lr, 'e', 2)), this);
        button->setObjectName(QStringLiteral("lrSuggestion_") + s.name);
        button->setToolTip(tip);
        const double lr = s.lr;
        connect(button, &QPushButton::clicked, this, [this, lr] { choose(lr); });
        m_suggestionRow->addWidget(button);
        m_suggestionButtons.append(button);
    }
}

void LrFinderDialog::choose(double lr)
{
    // Three significant digits: what a person would type, and what the form then shows.
    Q_EMIT rateChosen(QString::number(lr, 'e', 2).toDouble());
    accept();
}

} // namespace ifs
