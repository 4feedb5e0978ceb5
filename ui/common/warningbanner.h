#pragma once

#include <QFrame>

class QLabel;
class QPushButton;
class QToolButton;

namespace ifs {

/// A non-modal, dismissable strip above the content for problems the user should see but that do
/// not block the work (a split mismatch, a refused dataset, skipped files).
class WarningBanner : public QFrame
{
    Q_OBJECT

public:
    enum class Level { Info, Warning, Error };

    explicit WarningBanner(QWidget *parent = nullptr);

    void showMessage(Level level, const QString &text, const QString &actionText = {});
    void dismiss();
    Level level() const { return m_level; }
    QString text() const;

Q_SIGNALS:
    void actionTriggered();

private:
    QLabel *m_icon;
    QLabel *m_text;
    QPushButton *m_action;
    QToolButton *m_close;
    Level m_level = Level::Info;
};

} // namespace ifs
