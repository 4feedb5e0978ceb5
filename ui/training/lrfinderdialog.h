#pragma once

#include "common/backgroundjob.h"
#include "training/lrfinder.h"
#include "training/training.h"

#include <QDialog>

class QChart;
class QChartView;
class QHBoxLayout;
class QLabel;
class QProgressBar;
class QPushButton;

namespace ifs {

/// The smoothed loss of an LR finder's ramp against the rate on a log axis, as fastai's
/// plot_lr_find() draws it (the last five steps left out), with the suggestions marked. A click
/// on the plot picks the rate under the cursor (rateClicked()).
class LrFinderPlot : public QWidget
{
    Q_OBJECT

public:
    explicit LrFinderPlot(QWidget *parent = nullptr);
    void setResult(const LrFindResult &result);
    void clear();
    /// The points drawn: (lr, smoothed loss).
    QList<QPointF> curve() const;
    /// The rate at a position of the plot widget, clamped to the curve's range; 0 without one.
    double rateAt(const QPoint &position) const;
    QChartView *chartView() const { return m_view; }

Q_SIGNALS:
    void rateClicked(double lr);

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    QChart *m_chart;
    QChartView *m_view;
    QList<QPointF> m_curve;
};

/// "Find learning rate": runs findLearningRate() on the Training form's configuration as a
/// BackgroundJob (progress, Cancel), shows the curve and a button per suggestion; a suggestion's
/// button or a click on the plot chooses a rate (rateChosen()) and closes the dialog.
class LrFinderDialog : public QDialog
{
    Q_OBJECT

public:
    explicit LrFinderDialog(const TrainConfig &config, QWidget *parent = nullptr);
    ~LrFinderDialog() override;

    /// Starts the finder (again); the dialog starts it once it is shown.
    void start(const LrFindOptions &options = {});
    bool isRunning() const { return m_job.isRunning(); }
    /// Blocks until the run's worker returned (tests); its outcome comes from the event loop.
    bool waitForWorker(int milliseconds);
    const LrFindResult &result() const { return m_result; }
    LrFinderPlot *plot() const { return m_plot; }

Q_SIGNALS:
    void rateChosen(double lr);
    /// The run ended: finished, failed or cancelled (after the dialog shows it).
    void runEnded();

protected:
    void showEvent(QShowEvent *event) override;
    void reject() override;

private:
    void showResult(const LrFindResult &result);
    void choose(double lr);

    TrainConfig m_config;
    BackgroundJob<LrFindResult, LrFindProgress> m_job;
    LrFindResult m_result;
    bool m_started = false;
    QLabel *m_status;
    QProgressBar *m_progress;
    LrFinderPlot *m_plot;
    QHBoxLayout *m_suggestionRow;
    QList<QPushButton *> m_suggestionButtons;
    QPushButton *m_cancel;
};

} // namespace ifs
