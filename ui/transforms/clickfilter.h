#pragma once

#include <QObject>

#include <functional>

namespace ifs {

/// An event filter that calls a function on each left-button release on the widgets it watches,
/// and lets the event go on: a click anywhere on a finding's row activates it.
class ClickFilter : public QObject
{
public:
    ClickFilter(QObject *parent, std::function<void()> onClick);

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    std::function<void()> m_onClick;
};

} // namespace ifs
